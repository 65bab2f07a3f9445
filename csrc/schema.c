/* The vendor's API (shared/api/openapi.yaml) and the client's options, as data. */
#include <string.h>

#include "schema.h"

/* Field descriptors, one line each. */
#define FIELD(name, type, flags)  { name, type, flags, NULL, NULL, 0, 0 }
#define OBJECT(name, flags, s)    { name, EMP_T_OBJECT, flags, s, NULL, 0, 0 }
#define OBJECTS(name, flags, s)   { name, EMP_T_OBJECT_LIST, flags, s, NULL, 0, 0 }
#define ENUM(name, flags, list)   { name, EMP_T_ENUM, flags, NULL, list, 0, 0 }
#define INTEGER(name, flags, ...) { name, EMP_T_INTEGER, flags, NULL, NULL, __VA_ARGS__ }  /* ..., min, max */
#define SECONDS(name, ...)        { name, EMP_T_SECONDS, 0, NULL, NULL, __VA_ARGS__ }         /* ..., min, max */
#define END                       { NULL, EMP_T_STRING, 0, NULL, NULL, 0, 0 }

/* Ids and counts the API takes: 1 to 2^53, the whole numbers JSON carries exactly. */
#define ID_RANGE 1, 9007199254740992.0

/* --- requests ------------------------------------------------------------ */

const emp_field emp_an_id = INTEGER("id", 0, ID_RANGE);

static const emp_field build_fields[] = {
  FIELD("url",        EMP_T_STRING, EMP_NONEMPTY),
  FIELD("branch",     EMP_T_STRING, EMP_NONEMPTY),
  FIELD("commit",     EMP_T_STRING, EMP_NONEMPTY),
  FIELD("commit_url", EMP_T_STRING, EMP_NONEMPTY),
  FIELD("version",    EMP_T_STRING, EMP_NONEMPTY),
  END
};
static const emp_schema build_schema = { build_fields, NULL };

static const emp_field trigger_fields[] = {
  FIELD("environment",                     EMP_T_STRING,        EMP_REQUIRED | EMP_NONEMPTY),
  OBJECT("build",                          0, &build_schema),
  FIELD("metadata",                        EMP_T_METADATA,      0),
  FIELD("environment_variables_overrides", EMP_T_ENV_OVERRIDES, 0),
  FIELD("tags",                            EMP_T_STRING_LIST,   0),
  FIELD("branch",                          EMP_T_STRING,        EMP_NONEMPTY),
  INTEGER("project_id",                    0, ID_RANGE),
  FIELD("send_notifications",              EMP_T_BOOL,          0),
  INTEGER("total_shards",                  0, ID_RANGE),
  INTEGER("rerun_source_id",               0, ID_RANGE),
  FIELD("rerun_only_failed",               EMP_T_BOOL,          0),
  FIELD("github_actor",                    EMP_T_STRING,        EMP_NONEMPTY),
  END
};
/* "Cannot be used together with build - pick one." */
static const char *const trigger_exclusive[] = { "branch", "build", NULL };
static const emp_schema trigger_input = { trigger_fields, trigger_exclusive };

static const emp_field rerun_fields[] = {
  INTEGER("id",               EMP_REQUIRED | EMP_IN_PATH, ID_RANGE),
  FIELD("only_failed",        EMP_T_BOOL, 0),
  FIELD("send_notifications", EMP_T_BOOL, 0),
  END
};
static const emp_schema rerun_input = { rerun_fields, NULL };

static const emp_field get_fields[] = {
  INTEGER("id", EMP_REQUIRED | EMP_IN_PATH, ID_RANGE),
  END
};
static const emp_schema get_input = { get_fields, NULL };

static const emp_field cancel_fields[] = {
  INTEGER("id",   EMP_REQUIRED | EMP_IN_PATH, ID_RANGE),
  FIELD("reason", EMP_T_STRING, EMP_NONEMPTY),   /* kept by the vendor for audit */
  END
};
static const emp_schema cancel_input = { cancel_fields, NULL };

/* The older pages' list of states; the newest page gives none. */
static const char *const run_states[] = {
  "pending", "queued", "started", "ended", "error", "cancelled", "cancelling", NULL
};
static const char *const run_results[] = { "passed", "failed", NULL };

/* In this order in the query string. */
static const emp_field list_fields[] = {
  INTEGER("id",               EMP_IN_QUERY, ID_RANGE),
  FIELD("branch",             EMP_T_STRING, EMP_IN_QUERY | EMP_NONEMPTY),
  ENUM("state",               EMP_IN_QUERY, run_states),
  ENUM("result",              EMP_IN_QUERY, run_results),
  FIELD("environment_ids",    EMP_T_ID_LIST, EMP_IN_QUERY),   /* sent comma-separated */
  INTEGER("interval_in_days", EMP_IN_QUERY, ID_RANGE),
  INTEGER("page",             EMP_IN_QUERY, ID_RANGE),
  INTEGER("per_page",         EMP_IN_QUERY, 1, 100),
  END
};
static const emp_schema list_input = { list_fields, NULL };

/* --- responses ------------------------------------------------------------
 * As liberal as the vendor's schema: a field's type is checked wherever it is
 * present, any JSON number is fine where it says number, null where it says
 * nullable (and for counts the vendor leaves null while a run is queued).
 * Presence is required only of what callers rely on, so a field the vendor
 * drops does not break a release gate; fields not listed are passed through.
 * Ids are the exception: one a double cannot hold exactly is refused, since
 * it would name another run. */

static const emp_field trigger_status_fields[] = {
  FIELD("success", EMP_T_BOOL, EMP_REQUIRED | EMP_MUST_BE_TRUE),
  END
};
static const emp_schema trigger_status = { trigger_status_fields, NULL };

static const emp_field created_run_fields[] = {
  FIELD("id",              EMP_T_ID,     EMP_REQUIRED),
  FIELD("state",           EMP_T_STRING, EMP_REQUIRED),
  FIELD("test_run_branch", EMP_T_STRING, EMP_NULLABLE),
  FIELD("created_at",      EMP_T_STRING, EMP_NULLABLE),
  END
};
static const emp_schema created_run = { created_run_fields, NULL };

static const emp_field create_data_fields[] = {
  OBJECT("trigger",  EMP_REQUIRED, &trigger_status),
  OBJECT("test_run", EMP_REQUIRED, &created_run),
  END
};
static const emp_schema create_data = { create_data_fields, NULL };

static const emp_field project_fields[] = {
  FIELD("id",        EMP_T_ID,     EMP_NULLABLE),
  FIELD("name",      EMP_T_STRING, EMP_NULLABLE),
  FIELD("slug",      EMP_T_STRING, EMP_NULLABLE),
  FIELD("repo_name", EMP_T_STRING, EMP_NULLABLE),
  END
};
static const emp_schema project_schema = { project_fields, NULL };

/* What TestRunDetail and TestRunListItem both hold; a listed run has
 * fewer of them present. */
#define RUN_FIELDS \
  FIELD("total_count",       EMP_T_NUMBER, EMP_NULLABLE), \
  FIELD("success_count",     EMP_T_NUMBER, EMP_NULLABLE), \
  FIELD("failed_count",      EMP_T_NUMBER, EMP_NULLABLE), \
  FIELD("skipped_count",     EMP_T_NUMBER, EMP_NULLABLE), \
  FIELD("flaky_count",       EMP_T_NUMBER, EMP_NULLABLE), \
  FIELD("duration",          EMP_T_NUMBER, EMP_NULLABLE), \
  FIELD("test_run_branch",   EMP_T_STRING, EMP_NULLABLE), \
  FIELD("environment_slug",  EMP_T_STRING, EMP_NULLABLE), \
  FIELD("environment_name",  EMP_T_STRING, EMP_NULLABLE), \
  FIELD("build_url",         EMP_T_STRING, EMP_NULLABLE), \
  FIELD("build_branch",      EMP_T_STRING, EMP_NULLABLE), \
  FIELD("commit",            EMP_T_STRING, EMP_NULLABLE), \
  FIELD("created_at",        EMP_T_STRING, EMP_NULLABLE)

static const emp_field run_detail_fields[] = {
  FIELD("id",                EMP_T_ID,     EMP_REQUIRED),
  FIELD("state",             EMP_T_STRING, EMP_REQUIRED),
  RUN_FIELDS,
  FIELD("test_run_head_sha", EMP_T_STRING, EMP_NULLABLE),
  FIELD("run_started_at",    EMP_T_STRING, EMP_NULLABLE),
  FIELD("run_ended_at",      EMP_T_STRING, EMP_NULLABLE),
  FIELD("summary_url",       EMP_T_STRING, EMP_NULLABLE),
  END
};
static const emp_schema run_detail = { run_detail_fields, NULL };

static const emp_field run_view_fields[] = {
  OBJECT("project",                  EMP_NULLABLE, &project_schema),
  OBJECT("testRun",                  EMP_REQUIRED, &run_detail),
  FIELD("flattenedSummaryDetails",   EMP_T_ARRAY,  EMP_NULLABLE),
  END
};
static const emp_schema run_view = { run_view_fields, NULL };

static const emp_field get_data_fields[] = {
  OBJECT("test_run", EMP_REQUIRED, &run_view),
  END
};
static const emp_schema get_data = { get_data_fields, NULL };

/* No field is required here, and `state` (older pages only, not in the
 * schema) passes through as it comes. */
static const emp_field list_item_fields[] = {
  FIELD("id", EMP_T_ID, EMP_NULLABLE),
  RUN_FIELDS,
  END
};
static const emp_schema list_item = { list_item_fields, NULL };

static const emp_field test_runs_fields[] = {
  OBJECTS("items", EMP_NULLABLE, &list_item),
  END
};
static const emp_schema test_runs_schema = { test_runs_fields, NULL };

static const emp_field list_data_fields[] = {
  OBJECT("project",   EMP_NULLABLE, &project_schema),
  OBJECT("test_runs", EMP_NULLABLE, &test_runs_schema),
  END
};
static const emp_schema list_data = { list_data_fields, NULL };

static const emp_field pagination_fields[] = {
  FIELD("page",        EMP_T_NUMBER, EMP_NULLABLE),
  FIELD("per_page",    EMP_T_NUMBER, EMP_NULLABLE),
  FIELD("total",       EMP_T_NUMBER, EMP_NULLABLE),
  FIELD("total_pages", EMP_T_NUMBER, EMP_NULLABLE),
  END
};
static const emp_schema pagination_schema = { pagination_fields, NULL };

/* The whole documents. */
static const emp_field create_doc_fields[] = { OBJECT("data", EMP_REQUIRED, &create_data), END };
static const emp_schema create_doc = { create_doc_fields, NULL };
static const emp_field get_doc_fields[] = { OBJECT("data", EMP_REQUIRED, &get_data), END };
static const emp_schema get_doc = { get_doc_fields, NULL };
static const emp_field cancel_doc_fields[] = { FIELD("message", EMP_T_STRING, EMP_NULLABLE), END };
static const emp_schema cancel_doc = { cancel_doc_fields, NULL };
static const emp_field list_doc_fields[] = {
  OBJECT("data",       EMP_REQUIRED, &list_data),
  OBJECT("pagination", EMP_NULLABLE, &pagination_schema),   /* older pages have none */
  END
};
static const emp_schema list_doc = { list_doc_fields, NULL };

/* --- endpoints ------------------------------------------------------------ */

static const emp_status_note cancel_notes[] = {
  { 412, "the run had already ended (ended, error or cancelled), so there was nothing to cancel" },
  { 0, NULL }
};

const emp_endpoint emp_endpoints[] = {
  /* name      method  path                           input          response     result           beside        flags */
  { "trigger", "PUT",  "/api/test-runs",              &trigger_input, &create_doc, "data.test_run", NULL,         0,              NULL },
  { "rerun",   "POST", "/api/test-runs/{id}/re-run",  &rerun_input,   &create_doc, "data.test_run", NULL,         0,              NULL },
  { "get",     "GET",  "/api/test-runs/{id}",         &get_input,     &get_doc,    "data.test_run", NULL,         EMP_IDEMPOTENT, NULL },
  { "cancel",  "POST", "/api/test-runs/{id}/cancel",  &cancel_input,  &cancel_doc, NULL,            NULL,         EMP_IDEMPOTENT, cancel_notes },
  { "list",    "GET",  "/api/test-runs",              &list_input,    &list_doc,   "data",          "pagination", EMP_IDEMPOTENT, NULL },
  { NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL }
};

/* A run's Playwright report, from its summary_url: any URL, no schema. */
static const emp_status_note download_notes[] = {
  { 401, "the report's URL refused access (a signed URL may have expired; get the run again for a fresh one)" },
  { 403, "the report's URL refused access (a signed URL may have expired; get the run again for a fresh one)" },
  { 404, "no report at the run's summary_url" },
  { 0, NULL }
};
const emp_endpoint emp_download = { "report", "GET", NULL, NULL, NULL, NULL, NULL, EMP_IDEMPOTENT | EMP_RAW, download_notes };

const emp_endpoint *emp_endpoint_find(const char *name) {
  const emp_endpoint *ep;
  for (ep = emp_endpoints; ep->name != NULL; ep++)
    if (strcmp(ep->name, name) == 0) return ep;
  return NULL;
}

int emp_schema_has_body(const emp_schema *s) {
  const emp_field *f;
  for (f = s->fields; f->name != NULL; f++)
    if (!(f->flags & (EMP_IN_PATH | EMP_IN_QUERY))) return 1;
  return 0;
}

const char *emp_endpoint_names(void) {
  static char names[128];
  const emp_endpoint *ep;
  if (names[0] == '\0')
    for (ep = emp_endpoints; ep->name != NULL; ep++) {
      if (ep != emp_endpoints) strcat(names, ep[1].name == NULL ? " or " : ", ");
      strcat(names, ep->name);
    }
  return names;
}

/* --- the client's options (empirical.new) ---------------------------------- */

/* Seconds become libcurl's long milliseconds: at least 1 ms (0 would mean
 * "no limit" to libcurl), and within a 32-bit long. */
#define SECONDS_RANGE 0.001, 2147483.0

static const emp_field client_option_fields[] = {
  FIELD("token",              EMP_T_STRING, EMP_REQUIRED | EMP_NONEMPTY | EMP_HEADER | EMP_SECRET),
  FIELD("base_url",           EMP_T_STRING, EMP_REQUIRED | EMP_NONEMPTY | EMP_HEADER),
  INTEGER("project_id",       0, ID_RANGE),
  FIELD("project_slug",       EMP_T_STRING, EMP_NONEMPTY | EMP_HEADER),
  SECONDS("timeout",          SECONDS_RANGE),
  SECONDS("connect_timeout",  SECONDS_RANGE),
  SECONDS("deadline",         SECONDS_RANGE),
  INTEGER("low_speed_limit",  0, 1, 2147483647.0),    /* bytes per second, a long */
  SECONDS("low_speed_time",   1, 2147483.0),          /* whole seconds to libcurl */
  INTEGER("retries",          0, 0, 10),
  SECONDS("max_retry_after",  0, 2147483.0),
  FIELD("ca_file",            EMP_T_STRING, EMP_NONEMPTY),
  FIELD("proxy",              EMP_T_STRING, EMP_NONEMPTY | EMP_HEADER),
  FIELD("user_agent",         EMP_T_STRING, EMP_NONEMPTY | EMP_HEADER),
  INTEGER("max_response_bytes", 0, 1, 9007199254740992.0),
  FIELD("strict",             EMP_T_BOOL, 0),
  FIELD("allow_plain_http",   EMP_T_BOOL, 0),
  FIELD("verbose",            EMP_T_BOOL, 0),
  END
};
static const char *const client_option_exclusive[] = { "project_id", "project_slug", NULL };
const emp_schema emp_client_options = { client_option_fields, client_option_exclusive };
