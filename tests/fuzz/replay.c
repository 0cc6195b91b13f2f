/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs a fuzz target over files and directories of inputs, without
 * libFuzzer: this is how the corpora (seeds and every crash found, kept as
 * regression inputs) replay under `make check` in every build.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
run_file (const char *path)
{
	FILE *f = fopen (path, "rb");
	unsigned char *buf = NULL;
	long n;
	if (!f)
		return -1;
	if (fseek (f, 0, SEEK_END) != 0 || (n = ftell (f)) < 0 || fseek (f, 0, SEEK_SET) != 0) {
		fclose (f);
		return -1;
	}
	buf = malloc ((size_t)n + 1);
	if (!buf || fread (buf, 1, (size_t)n, f) != (size_t)n) {
		free (buf);
		fclose (f);
		return -1;
	}
	fclose (f);
	LLVMFuzzerTestOneInput (buf, (size_t)n);
	free (buf);
	return 0;
}

int
main (int argc, char **argv)
{
	char defdir[4096];
	char *def[2] = { argv[0], defdir };
	int count = 0;

	/* Without arguments (make check): the target's own corpus. */
	if (argc < 2) {
		const char *src = getenv ("P11W_SRCDIR");
		snprintf (defdir, sizeof defdir, "%s/tests/fuzz/corpus/%s", src ? src : ".", FUZZ_NAME);
		argc = 2;
		argv = def;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat (argv[i], &st) != 0) {
			fprintf (stderr, "%s: missing\n", argv[i]);
			return 1;
		}
		if (S_ISDIR (st.st_mode)) {
			DIR *d = opendir (argv[i]);
			struct dirent *e;
			if (!d)
				return 1;
			while ((e = readdir (d))) {
				char p[4096];
				if (e->d_name[0] == '.')
					continue;
				snprintf (p, sizeof p, "%s/%s", argv[i], e->d_name);
				if (run_file (p) != 0) {
					fprintf (stderr, "%s: unreadable\n", p);
					closedir (d);
					return 1;
				}
				count++;
			}
			closedir (d);
		} else {
			if (run_file (argv[i]) != 0)
				return 1;
			count++;
		}
	}
	printf ("replayed %d input(s)\n", count);
	return count > 0 ? 0 : 1;
}
