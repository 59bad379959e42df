/* Private to src/providers/aws: the service descriptions, the one signed call through the
 * seam (client.c) and the XML helpers (xml.c) that the per-service action files share.
 * Nothing here is visible to the engine; it sees only drb_aws_actions (actions.c). */
#ifndef DRB_AWS_INT_H
#define DRB_AWS_INT_H

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <drbook/action.h>
#include <drbook/aws.h>
#include <drbook/util.h>

/* JSON: 1.1. AWS_S3 is REST-XML as S3 wants it: the path signed as given (no normalising),
 * X-Amz-Content-SHA256 signed, a body of any bytes, and answers that may be an object. */
enum { AWS_QUERY = 0, AWS_JSON = 1, AWS_RESTXML = 2, AWS_JSON10 = 3, AWS_S3 = 4 };

/* One AWS service as drbook speaks to it. */
typedef struct aws_svc {
	const char *name;	   /* "rds": call records and messages */
	const char *signing;	   /* SigV4 signing name ("monitoring" for CloudWatch) */
	const char *host_prefix;   /* endpoint host prefix */
	const char *env_id;	   /* AWS_ENDPOINT_URL_<env_id> */
	int proto;		   /* AWS_QUERY, AWS_JSON, AWS_JSON10, AWS_RESTXML */
	int global;		   /* Route 53: one endpoint, signed for us-east-1 */
	const char *api_version;   /* Query protocol Version= */
	const char *target_prefix; /* JSON protocol X-Amz-Target prefix */
} aws_svc;

extern const aws_svc drb_awsi_rds, drb_awsi_route53, drb_awsi_ecs, drb_awsi_sns, drb_awsi_sts,
    drb_awsi_cloudwatch, drb_awsi_dynamodb, drb_awsi_s3;

/* What one request says. All borrowed. */
typedef struct aws_req {
	const char *operation; /* "DescribeDBInstances" */
	/* Query: the parameters besides Action and Version, an object of strings (numbers
	 * and booleans are converted), in insertion order. */
	const json_t *params;
	/* JSON 1.1: the body object. */
	const json_t *json;
	/* REST-XML: method, the path as it goes on the wire (already percent-encoded), the
	 * raw query or NULL, and the XML body or NULL. */
	const char *method;
	const char *path;
	const char *query;
	const char *body;
	/* AWS_S3 only: body_len bytes of body (any bytes), its Content-Type and Content-MD5
	 * (base64; S3 Object Lock refuses a PUT without an integrity header), and raw_answer: a
	 * 2xx body is the object, not XML (left unparsed in raw.body). */
	size_t body_len;
	const char *content_type;
	const char *content_md5;
	int raw_answer;
	/* AWS_S3 only: more request headers to sign and send (x-amz-meta-NAME: value...), an
	 * object of strings, at most AWS_S3_MAX_EXTRA_HEADERS; NULL for none. */
	const json_t *extra_headers;
} aws_req;

#define AWS_S3_MAX_EXTRA_HEADERS 24

/* A successful answer. Owned: release with drb_awsi_resp_free. */
typedef struct aws_resp {
	json_t *raw; /* the seam's response object {status, body, request_id, ...} */
	long status;
	xmlDoc *doc;  /* XML protocols: the parsed body (NULL for an empty body) */
	json_t *json; /* JSON protocol: the parsed body */
} aws_resp;

void drb_awsi_resp_free(aws_resp *r);

/* The start of every action: checks args against the schema of the action's row in
 * drb_aws_actions (unknown, missing, mistyped arguments), refuses a mutating action in a
 * read-only context, looks the connection up in ctx->connections and resolves region and
 * endpoint. */
int drb_awsi_begin(drb_action_ctx *ctx, const json_t *args, const aws_svc *svc, const char *action,
		   drb_aws_endpoint *ep, drb_err *err);

/* The implementations behind the table in actions.c (in the service files). */
typedef int aws_action_impl(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err);
aws_action_impl drb_awsi_sts_caller, drb_awsi_sns_publish, drb_awsi_cw_put_metric,
    drb_awsi_cw_describe_alarms;
aws_action_impl drb_awsi_rds_describe, drb_awsi_rds_promote, drb_awsi_rds_reboot,
    drb_awsi_rds_failover_cluster, drb_awsi_rds_snapshots, drb_awsi_rds_restore_pitr,
    drb_awsi_rds_restore_snapshot, drb_awsi_rds_events, drb_awsi_rds_read_replica,
    drb_awsi_rds_modify, drb_awsi_rds_create_snapshot, drb_awsi_rds_copy_snapshot, drb_awsi_rds_delete;
aws_action_impl drb_awsi_r53_get_record, drb_awsi_r53_upsert, drb_awsi_r53_delete,
    drb_awsi_r53_get_change, drb_awsi_r53_hc_status, drb_awsi_r53_hc_update;
aws_action_impl drb_awsi_ecs_describe, drb_awsi_ecs_update, drb_awsi_ecs_list_tasks,
    drb_awsi_ecs_stop_task, drb_awsi_ecs_create, drb_awsi_ecs_delete,
    drb_awsi_ecs_describe_task_definition;
aws_action_impl drb_awsi_arc_get, drb_awsi_arc_update;
aws_action_impl drb_awsi_aas_describe, drb_awsi_aas_register; /* appautoscaling.c */
aws_action_impl drb_awsi_ecr_describe_images;		     /* ecr.c */

/* Sends one request through ctx->seam (signing and drb_http_perform_retry happen inside the
 * seam's perform) and reads the answer. A 2xx answer fills *out. An AWS error becomes
 * "SERVICE Operation: Code: message (request id X)" with the code of drb_aws_error_code;
 * a 2xx body that does not parse is DRB_EINVAL. */
int drb_awsi_call(drb_action_ctx *ctx, const aws_svc *svc, const drb_aws_endpoint *ep,
		  const aws_req *rq, aws_resp *out, drb_err *err);

/* Most pages a listing reads before it gives up (DRB_ELIMIT): a loop guard, far above any
 * real account's resources. */
#define AWS_MAX_PAGES 50

/* One listing operation whose answers come in pages. */
typedef struct aws_pages {
	const char *operation;
	const char *token;	  /* the request's page token field: nextToken, NextToken, Marker */
	const char *answer_token; /* the answer's token field or element when it differs */
	/* where the items are: a JSON answer's array field, or an XML answer's
	 * "Container/Item" (the Item children of the first Container element); one or two */
	const char *items[2];
	json_t *(*from_json)(const json_t *item); /* JSON item -> listed value (NULL: as is) */
	json_t *(*from_xml)(xmlNode *item);	  /* XML item -> listed value (required) */
	const char *what;			  /* the items, for the error past the limit */
} aws_pages;

/* Reads every page of a listing: sends request (the JSON body, or the Query parameters),
 * its token field set to each answer's token until an answer has none, and collects the
 * items of every answer, mapped, into a new array *out. A mapping's NULL is out of memory.
 * More than AWS_MAX_PAGES pages is DRB_ELIMIT. */
int drb_awsi_pages(drb_action_ctx *ctx, const aws_svc *svc, const drb_aws_endpoint *ep,
		   const aws_pages *pg, json_t *request, json_t **out, drb_err *err);

/* RFC 3986 percent-encoding of every byte outside A-Za-z0-9-_.~ (also for path segments). */
int drb_awsi_urlencode(drb_buf *b, const char *s);
/* application/x-www-form-urlencoded for Query bodies: the same, but a space is '+', as
 * botocore sends it (AWS reads both; moto re-encodes the form this way before it checks
 * the signature, so '%20' would not verify there). */
int drb_awsi_formencode(drb_buf *b, const char *s);
/* XML text escaping (&, <, >, ", '). */
int drb_awsi_xml_escape(drb_buf *b, const char *s);

/* Sleeps s seconds in slices; DRB_EINTERRUPTED when ctx->cancel is set, DRB_ETIMEOUT when
 * the deadline passes first. */
int drb_awsi_sleep(drb_action_ctx *ctx, double s, const char *what, drb_err *err);

/* ---- XML (xml.c) ---------------------------------------------------------------------- */

/* libxml2, loaded on the first XML answer (libxml.c): every function xml.c calls, each a
 * member of drb_xml_api typed from the build's headers. Only xml.c calls libxml2; the other
 * files walk the tree's structs and use the drb_awsx_ helpers. A call of libxml2 not through
 * this table fails to link (see layercheck_aws). */
/* clang-format off */
#define DRB_XML_FUNCS(X) \
	X(xmlCtxtGetLastError) X(xmlCtxtReadMemory) X(xmlFreeDoc) X(xmlFreeParserCtxt) \
	X(xmlInitParser) X(xmlNewParserCtxt) X(xmlNodeGetContent)
/* clang-format on */

typedef struct drb_xml_api {
#define DRB_XML_MEMBER(f) __typeof__(f) *f;
	DRB_XML_FUNCS(DRB_XML_MEMBER)
#undef DRB_XML_MEMBER
	xmlFreeFunc *free_fn; /* libxml2's xmlFree, a variable holding its free function */
} drb_xml_api;

/* Loads libxml2 the first time (thread-safe: pthread_once; xmlInitParser is called then) and
 * sets *out, valid for the life of the process. When it cannot be loaded: DRB_ERR naming
 * `what`, the library and the Debian package, every time. */
int drb_awsx_lib(const drb_xml_api **out, const char *what, drb_err *err);

/* Parses an answer with libxml2: no network (XML_PARSE_NONET), no entity substitution, no
 * DTD loading, no messages on stderr. DRB_EINVAL with libxml2's message when malformed. */
int drb_awsx_parse(const char *body, size_t len, xmlDoc **out, drb_err *err);
/* Frees a document from drb_awsx_parse; NULL is fine. */
void drb_awsx_free(xmlDoc *doc);
/* The root element of a parsed document (libxml2's xmlDocGetRootElement), NULL for none. */
xmlNode *drb_awsx_root(const xmlDoc *doc);
/* The first element, n itself or a descendant in document order, whose local name is name
 * (namespaces ignored). NULL when none. */
xmlNode *drb_awsx_find(xmlNode *n, const char *name);
/* Walks child elements along "A/B/C" from n. NULL when a step is missing. */
xmlNode *drb_awsx_child(xmlNode *n, const char *path);
/* The next sibling element with the same local name as n. */
xmlNode *drb_awsx_next(xmlNode *n);
/* Copies the text of drb_awsx_child(n, path) ("" path = n) into out; 0, or -1 when the
 * element is missing (out = ""). Text longer than n is truncated. */
int drb_awsx_text(xmlNode *n, const char *path, char *out, size_t size);
/* JSON values of drb_awsx_child(n, path): a string, an integer, a boolean ("true"), or null
 * when the element is missing (or, for integers, not a number). NULL only out of memory. */
json_t *drb_awsx_str(xmlNode *n, const char *path);
json_t *drb_awsx_int(xmlNode *n, const char *path);
json_t *drb_awsx_bool(xmlNode *n, const char *path);
/* A JSON array of the text of every child element of drb_awsx_child(n, path). */
json_t *drb_awsx_list(xmlNode *n, const char *path);

/* Sets key to v (stealing it) and remembers an allocation failure in *bad. */
void drb_awsi_set(json_t *o, const char *key, json_t *v, int *bad);

/* EC2, S3 actions and ElastiCache (ec2.c, s3.c, elasticache.c). */
extern const aws_svc drb_awsi_ec2, drb_awsi_elasticache;
aws_action_impl drb_awsi_ec2_describe_sgs, drb_awsi_ec2_authorize_ingress,
    drb_awsi_ec2_revoke_ingress;
aws_action_impl drb_awsi_s3_get_replication, drb_awsi_s3_head_object, drb_awsi_s3_put_object;
aws_action_impl drb_awsi_ec_describe_rgs, drb_awsi_ec_create_rg, drb_awsi_ec_modify_rg;

#endif
