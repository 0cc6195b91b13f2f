#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs tests/module/test-module (see test-module.c) against a fresh SoftHSM token.
. "${P11W_SRCDIR:?}/tests/module/module-env.sh"
module_setup
rc=0
module_run test-module || rc=$?
exit $rc
