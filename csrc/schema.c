/* The vendor's API (shared/api/openapi.yaml) and the client's options, as data. */
#include <string.h>

#include "schema.h"

#define END { NULL, EMP_T_STRING, 0, NULL }

/* --- requests ------------------------------------------------------------ */

static const emp_field build_fields[] = {
  { "url",        EMP_T_STRING, EMP_NONEMPTY, NULL },
  { "branch",     EMP_T_STRING, EMP_NONEMPTY, NULL },
  { "commit",     EMP_T_STRING, EMP_NONEMPTY, NULL },
  { "commit_url", EMP_T_STRING, EMP_NONEMPTY, NULL },
  { "version",    EMP_T_STRING, EMP_NONEMPTY, NULL },
  END
};
static const emp_schema build_schema = { build_fields, NULL };

static const emp_field trigger_fields[] = {
  { "environment",                     EMP_T_STRING,        EMP_REQUIRED | EMP_NONEMPTY, NULL },
  { "build",                           EMP_T_OBJECT,        0, &build_schema },
  { "metadata",                        EMP_T_METADATA,      0, NULL },
  { "environment_variables_overrides", EMP_T_ENV_OVERRIDES, 0, NULL },
  { "tags",                            EMP_T_STRING_LIST,   0, NULL },
  { "branch",                          EMP_T_STRING,        EMP_NONEMPTY, NULL },
  { "project_id",                      EMP_T_ID,            0, NULL },
  { "send_notifications",              EMP_T_BOOL,          0, NULL },
  { "total_shards",                    EMP_T_ID,            0, NULL },
  { "rerun_source_id",                 EMP_T_ID,            0, NULL },
  { "rerun_only_failed",               EMP_T_BOOL,          0, NULL },
  { "github_actor",                    EMP_T_STRING,        EMP_NONEMPTY, NULL },
  END
};
/* "Cannot be used together with build - pick one." */
static const char *const trigger_exclusive[] = { "branch", "build", NULL };
static const emp_schema trigger_input = { trigger_fields, trigger_exclusive };

static const emp_field rerun_fields[] = {
  { "id",                 EMP_T_ID,   EMP_REQUIRED | EMP_IN_PATH, NULL },
  { "only_failed",        EMP_T_BOOL, 0, NULL },
  { "send_notifications", EMP_T_BOOL, 0, NULL },
  END
};
static const emp_schema rerun_input = { rerun_fields, NULL };

static const emp_field get_fields[] = {
  { "id", EMP_T_ID, EMP_REQUIRED | EMP_IN_PATH, NULL },
  END
};
static const emp_schema get_input = { get_fields, NULL };

/* --- responses ------------------------------------------------------------
 * Types are checked wherever a field is present. Presence is required only
 * of what callers rely on, so a field the vendor drops does not break a
 * release gate; fields not listed here are passed through untouched. */

static const emp_field trigger_status_fields[] = {
  { "success", EMP_T_BOOL, EMP_REQUIRED | EMP_MUST_BE_TRUE, NULL },
  END
};
static const emp_schema trigger_status = { trigger_status_fields, NULL };

static const emp_field created_run_fields[] = {
  { "id",              EMP_T_ID,     EMP_REQUIRED, NULL },
  { "state",           EMP_T_STRING, EMP_REQUIRED, NULL },
  { "test_run_branch", EMP_T_STRING, EMP_NULLABLE, NULL },
  { "created_at",      EMP_T_STRING, EMP_NULLABLE, NULL },
  END
};
static const emp_schema created_run = { created_run_fields, NULL };

static const emp_field create_data_fields[] = {
  { "trigger",  EMP_T_OBJECT, EMP_REQUIRED, &trigger_status },
  { "test_run", EMP_T_OBJECT, EMP_REQUIRED, &created_run },
  END
};
static const emp_schema create_data = { create_data_fields, NULL };

static const emp_field project_fields[] = {
  { "id",        EMP_T_NUMBER, 0, NULL },
  { "name",      EMP_T_STRING, EMP_NULLABLE, NULL },
  { "repo_name", EMP_T_STRING, EMP_NULLABLE, NULL },
  END
};
static const emp_schema project_schema = { project_fields, NULL };

static const emp_field run_detail_fields[] = {
  { "id",                EMP_T_ID,     EMP_REQUIRED, NULL },
  { "state",             EMP_T_STRING, EMP_REQUIRED, NULL },
  { "total_count",       EMP_T_NUMBER, EMP_NULLABLE, NULL },
  { "success_count",     EMP_T_NUMBER, EMP_NULLABLE, NULL },
  { "failed_count",      EMP_T_NUMBER, EMP_NULLABLE, NULL },
  { "skipped_count",     EMP_T_NUMBER, EMP_NULLABLE, NULL },
  { "flaky_count",       EMP_T_NUMBER, EMP_NULLABLE, NULL },
  { "duration",          EMP_T_NUMBER, EMP_NULLABLE, NULL },
  { "test_run_branch",   EMP_T_STRING, EMP_NULLABLE, NULL },
  { "environment_slug",  EMP_T_STRING, EMP_NULLABLE, NULL },
  { "environment_name",  EMP_T_STRING, EMP_NULLABLE, NULL },
  { "build_url",         EMP_T_STRING, EMP_NULLABLE, NULL },
  { "build_branch",      EMP_T_STRING, EMP_NULLABLE, NULL },
  { "commit",            EMP_T_STRING, EMP_NULLABLE, NULL },
  { "created_at",        EMP_T_STRING, EMP_NULLABLE, NULL },
  { "test_run_head_sha", EMP_T_STRING, EMP_NULLABLE, NULL },
  { "run_started_at",    EMP_T_STRING, EMP_NULLABLE, NULL },
  { "run_ended_at",      EMP_T_STRING, EMP_NULLABLE, NULL },
  { "summary_url",       EMP_T_STRING, EMP_NULLABLE, NULL },
  END
};
static const emp_schema run_detail = { run_detail_fields, NULL };

static const emp_field run_view_fields[] = {
  { "project",                 EMP_T_OBJECT, EMP_NULLABLE, &project_schema },
  { "testRun",                 EMP_T_OBJECT, EMP_REQUIRED, &run_detail },
  { "flattenedSummaryDetails", EMP_T_ARRAY,  EMP_NULLABLE, NULL },
  END
};
static const emp_schema run_view = { run_view_fields, NULL };

static const emp_field get_data_fields[] = {
  { "test_run", EMP_T_OBJECT, EMP_REQUIRED, &run_view },
  END
};
static const emp_schema get_data = { get_data_fields, NULL };

/* --- endpoints ------------------------------------------------------------ */

const emp_endpoint emp_endpoints[] = {
  { "trigger", "PUT",  "/api/test-runs",             &trigger_input, &create_data, "test_run", 1 },
  { "rerun",   "POST", "/api/test-runs/{id}/re-run", &rerun_input,   &create_data, "test_run", 1 },
  { "get",     "GET",  "/api/test-runs/{id}",        &get_input,     &get_data,    "test_run", 0 },
  { NULL, NULL, NULL, NULL, NULL, NULL, 0 }
};

const emp_endpoint *emp_endpoint_find(const char *op) {
  const emp_endpoint *ep;
  for (ep = emp_endpoints; ep->op != NULL; ep++)
    if (strcmp(ep->op, op) == 0) return ep;
  return NULL;
}

/* --- the client's options (empirical.new) ---------------------------------- */

static const emp_field client_option_fields[] = {
  { "token",              EMP_T_STRING,  EMP_REQUIRED | EMP_NONEMPTY | EMP_HEADER, NULL },
  { "base_url",           EMP_T_STRING,  EMP_REQUIRED | EMP_NONEMPTY | EMP_HEADER, NULL },
  { "project_id",         EMP_T_ID,      0, NULL },
  { "project_slug",       EMP_T_STRING,  EMP_NONEMPTY | EMP_HEADER, NULL },
  { "timeout",            EMP_T_SECONDS, 0, NULL },
  { "connect_timeout",    EMP_T_SECONDS, 0, NULL },
  { "deadline",           EMP_T_SECONDS, 0, NULL },
  { "low_speed_limit",    EMP_T_ID,      0, NULL },
  { "low_speed_time",     EMP_T_SECONDS, 0, NULL },
  { "retries",            EMP_T_COUNT,   0, NULL },
  { "max_retry_after",    EMP_T_SECONDS, 0, NULL },
  { "ca_file",            EMP_T_STRING,  EMP_NONEMPTY, NULL },
  { "proxy",              EMP_T_STRING,  EMP_NONEMPTY | EMP_HEADER, NULL },
  { "user_agent",         EMP_T_STRING,  EMP_NONEMPTY | EMP_HEADER, NULL },
  { "max_response_bytes", EMP_T_ID,      0, NULL },
  { "strict",             EMP_T_BOOL,    0, NULL },
  { "allow_plain_http",   EMP_T_BOOL,    0, NULL },
  { "verbose",            EMP_T_BOOL,    0, NULL },
  END
};
static const char *const client_option_exclusive[] = { "project_id", "project_slug", NULL };
const emp_schema emp_client_options = { client_option_fields, client_option_exclusive };
