/*
 * registry: handlers by name (registry.h), a small table under a mutex:
 * registration happens before the workers start, lookups once per claim.
 */
#include "config.h"

#include "engine/registry.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

struct handler_entry {
	const char *name; /* borrowed */
	jobd_handler_fn fn;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct handler_entry registry[JOBD_REGISTRY_MAX];
static size_t registry_count;

int jobd_handler_register(const char *name, jobd_handler_fn fn)
{
	int rc = -1;

	pthread_mutex_lock(&registry_mu);
	for (size_t i = 0; i < registry_count; i++) {
		if (strcmp(registry[i].name, name) == 0) {
			registry[i].fn = fn;
			rc = 0;
			goto out;
		}
	}
	if (registry_count < JOBD_REGISTRY_MAX) {
		registry[registry_count].name = name;
		registry[registry_count].fn = fn;
		registry_count++;
		rc = 0;
	}
out:
	pthread_mutex_unlock(&registry_mu);
	return rc;
}

jobd_handler_fn jobd_handler_find(const char *name)
{
	jobd_handler_fn fn = NULL;

	pthread_mutex_lock(&registry_mu);
	for (size_t i = 0; i < registry_count && name; i++)
		if (strcmp(registry[i].name, name) == 0)
			fn = registry[i].fn;
	pthread_mutex_unlock(&registry_mu);
	return fn;
}
