/* libxml2, opened on the first XML answer (the Query and REST-XML protocols: RDS, Route 53,
 * SNS, STS, EC2, S3, ElastiCache, CloudWatch) instead of linked into drbook: Debian's
 * libxml2 brings ICU, libstdc++ and liblzma, which a validate, a lua step or a JSON-protocol
 * call never use. xml.c is the only caller. DRB_LIBXML2_SONAME is the SONAME of the libxml2
 * the build found (CMakeLists.txt). */
#include <pthread.h>
#include <stddef.h>

#include <drbook/dynlib.h>

#include "aws_int.h"

static const char *const names[] = {
#define DRB_XML_NAME(f) #f,
    DRB_XML_FUNCS(DRB_XML_NAME) "xmlFree",
#undef DRB_XML_NAME
};

#define N_SYMS (sizeof(names) / sizeof(names[0]))

static void *addrs[N_SYMS];
static drb_xml_api api;
static drb_dynlib lib = {.soname = DRB_LIBXML2_SONAME,
			 .what = "the XML library",
			 .package = "libxml2",
			 .names = names,
			 .addrs = addrs,
			 .n = N_SYMS};
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void open_libxml(void)
{
	size_t i = 0;

	drb_dynlib_open(&lib);
	/* POSIX: a function's address from dlsym is used through a pointer of its own type */
	if (lib.failed)
		return;
#define DRB_XML_SET(f) *(void **)(&api.f) = addrs[i++];
	DRB_XML_FUNCS(DRB_XML_SET)
#undef DRB_XML_SET
	api.free_fn = addrs[i];
	/* libxml2 must be initialised once before threads use it */
	api.xmlInitParser();
}

int drb_awsx_lib(const drb_xml_api **out, const char *what, drb_err *err)
{
	int rc;

	*out = NULL;
	pthread_once(&once, open_libxml);
	rc = drb_dynlib_check(&lib, what, err);
	if (rc == 0)
		*out = &api;
	return rc;
}
