/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slow-backend.so: a backend for the module tests that is $SOFTHSM2_MODULE
 * in every respect but one: C_SetAttributeValue of a CKA_LABEL that starts
 * with "slow-" waits SLOW_BACKEND_MS milliseconds before SoftHSM renames
 * the object.  That leaves a known window in which a rename through
 * p11-warden has passed the gate but not yet reached the backend, so that
 * another thread can be made to use the key inside it (test-gate-memory.c).
 *
 * With SLOW_BACKEND_FORK_IN_INIT set, its C_Initialize also forks a child
 * that exits at once, as a backend starting a helper process would (the
 * module must not deadlock in its fork handlers: test-bad-config.sh).
 *
 * Built as a libtool module for `make check` only; loaded by p11-warden
 * (through p11-kit) as the `module =` of a slot.
 */
#include "config.h"

#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOW_PREFIX "slow-"
#define SLOW_BACKEND_MS 300

static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST shim;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static CK_RV
slow_C_SetAttributeValue (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                          CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	for (CK_ULONG i = 0; templ && i < count; i++) {
		if (templ[i].type == CKA_LABEL && templ[i].pValue &&
		    templ[i].ulValueLen >= strlen (SLOW_PREFIX) &&
		    memcmp (templ[i].pValue, SLOW_PREFIX, strlen (SLOW_PREFIX)) == 0) {
			struct timespec ts = { SLOW_BACKEND_MS / 1000,
			                       (SLOW_BACKEND_MS % 1000) * 1000000L };
			while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
				;
			break;
		}
	}
	return real->C_SetAttributeValue (session, object, templ, count);
}

static CK_RV
fork_C_Initialize (CK_VOID_PTR args)
{
	if (getenv ("SLOW_BACKEND_FORK_IN_INIT")) {
		pid_t pid = fork ();
		if (pid == 0)
			_exit (0);
		if (pid > 0)
			(void)waitpid (pid, NULL, 0);
	}
	return real->C_Initialize (args);
}

static CK_RV shim_C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list);

static void
load (void)
{
	const char *path = getenv ("SOFTHSM2_MODULE");
	CK_C_GetFunctionList gfl;
	void *dl = dlopen (path && *path ? path : "/usr/lib/softhsm/libsofthsm2.so",
	                   RTLD_NOW | RTLD_LOCAL);

	if (!dl)
		return;
	gfl = (CK_C_GetFunctionList)dlsym (dl, "C_GetFunctionList");
	if (!gfl || gfl (&real) != CKR_OK || !real) {
		real = NULL;
		return;
	}
	shim = *real;
	shim.C_GetFunctionList = shim_C_GetFunctionList;
	shim.C_SetAttributeValue = slow_C_SetAttributeValue;
	shim.C_Initialize = fork_C_Initialize;
}

static CK_RV
shim_C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list)
{
	if (!list)
		return CKR_ARGUMENTS_BAD;
	pthread_once (&once, load);
	if (!real)
		return CKR_GENERAL_ERROR;
	*list = &shim;
	return CKR_OK;
}

__attribute__ ((visibility ("default"))) CK_RV C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list);

CK_RV
C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list)
{
	return shim_C_GetFunctionList (list);
}
