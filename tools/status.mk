# SPDX-License-Identifier: Apache-2.0
# Administration commands that report (cmd-status.c).
