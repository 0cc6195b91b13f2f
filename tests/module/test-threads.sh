#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs tests/module/test-threads (see test-threads.c) against a fresh SoftHSM token.
. "${P11W_SRCDIR:?}/tests/module/module-env.sh"
module_setup
rc=0
module_run test-threads || rc=$?
exit $rc
