# SPDX-License-Identifier: Apache-2.0
# The audit ledger: writer, reader/verifier, their tests and fuzz targets.
