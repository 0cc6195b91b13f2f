# SPDX-License-Identifier: Apache-2.0
# Administration commands that change the configuration (cmd-config.c).
