/* The action catalog of DESIGN.md as a fixed table for the runbook tests: the loader asks the
 * engine's registry in real use; here the names and modes come straight from the catalog
 * (0 read-only, 1 mutating, 2 decided at run time, 3 mutating unless read_only: true).
 * With DRB_TEST_SCHEMAS defined, with: is checked against the registry's schemas too. */
#ifndef DRB_TEST_RUNBOOK_ACTIONS_H
#define DRB_TEST_RUNBOOK_ACTIONS_H

#include <string.h>

#include <drbook/runbook.h>

static const struct {
	const char *name;
	int mode;
} test_actions[] = {
    {"lua", 3},
    {"sleep", 0},
    {"approval", 1},
    {"exec", 3},
    {"http.request", 2},
    {"notify", 1},
    {"aws.sts.get_caller_identity", 0},
    {"aws.rds.describe_db_instance", 0},
    {"aws.rds.promote_read_replica", 1},
    {"aws.rds.reboot_db_instance", 1},
    {"aws.rds.failover_db_cluster", 1},
    {"aws.rds.describe_db_snapshots", 0},
    {"aws.rds.restore_db_instance_to_point_in_time", 1},
    {"aws.rds.restore_db_instance_from_snapshot", 1},
    {"aws.rds.describe_events", 0},
    {"aws.rds.create_db_instance_read_replica", 1},
    {"aws.rds.modify_db_instance", 1},
    {"aws.rds.create_db_snapshot", 1},
    {"aws.rds.copy_db_snapshot", 1},
    {"aws.route53.get_record", 0},
    {"aws.route53.upsert_record", 1},
    {"aws.route53.delete_record", 1},
    {"aws.route53.get_health_check_status", 0},
    {"aws.route53.update_health_check", 1},
    {"aws.ecs.describe_service", 0},
    {"aws.ecs.update_service", 1},
    {"aws.ecs.list_tasks", 0},
    {"aws.ecs.stop_task", 1},
    {"aws.appautoscaling.describe_scalable_targets", 0},
    {"aws.appautoscaling.register_scalable_target", 1},
    {"aws.ecr.describe_images", 0},
    {"aws.sns.publish", 1},
    {"aws.cloudwatch.put_metric_data", 1},
    {"pg.query", 0},
    {"pg.exec", 1},
    {"pg.status", 0},
    {"pg.replication_lag", 0},
    {"pg.promote", 1},
    {"pg.fence", 1},
    {"pg.sentinel_write", 1},
    {"pg.sentinel_check", 0},
    {"pg.validate", 0},
};

static int test_action_mode(void *ud, const char *name)
{
	(void)ud;
	for (size_t i = 0; i < sizeof(test_actions) / sizeof(test_actions[0]); i++)
		if (!strcmp(test_actions[i].name, name))
			return test_actions[i].mode;
	return -1;
}

#ifdef DRB_TEST_SCHEMAS
/* The corpus checks with: against the real schemas, as drbook validate does: it links the
 * engine's registry (tests/CMakeLists.txt). */
#include <drbook/engine.h>
static const drb_load_opts test_opts = {test_action_mode, NULL, drb_engine_action_schema, 0};
#else
static const drb_load_opts test_opts = {test_action_mode, NULL, NULL, 0};
#endif

#endif
