/*
 * page: the monitor's static files (src/http/page/), embedded at build time by
 * build-aux/html2c.sh so that jobd serves them with no files on disk, no
 * CDN, offline.
 */
#ifndef JOBD_SRC_HTTP_PAGE_H
#define JOBD_SRC_HTTP_PAGE_H

#include <stddef.h>

struct jobd_page_file {
	const char *path;	  /* URL path, "/app.js" ("/" for index.html) */
	const char *content_type; /* "text/javascript; charset=utf-8" */
	const char *data;	  /* the file's bytes */
	size_t size;		  /* bytes */
};

extern const struct jobd_page_file jobd_page_files[];
extern const size_t jobd_page_files_count;

#endif
