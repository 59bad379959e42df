/* The list of AWS actions the engine registers: one place, so that adding an action to a
 * service file and forgetting it here is caught by the unit test that walks the catalog. */
#include <stddef.h>

#include "aws_int.h"

extern const drb_action drb_aws_sts_get_caller_identity, drb_aws_rds_describe_db_instance,
    drb_aws_rds_promote_read_replica, drb_aws_rds_reboot_db_instance,
    drb_aws_rds_failover_db_cluster, drb_aws_rds_describe_db_snapshots,
    drb_aws_rds_restore_db_instance_to_point_in_time, drb_aws_rds_restore_db_instance_from_snapshot,
    drb_aws_route53_get_record, drb_aws_route53_upsert_record, drb_aws_route53_get_change,
    drb_aws_route53_get_health_check_status, drb_aws_route53_update_health_check,
    drb_aws_ecs_describe_service, drb_aws_ecs_update_service, drb_aws_ecs_list_tasks,
    drb_aws_ecs_stop_task, drb_aws_sns_publish, drb_aws_cloudwatch_put_metric_data;

const drb_action *const drb_aws_actions[] = {
    &drb_aws_sts_get_caller_identity,
    &drb_aws_rds_describe_db_instance,
    &drb_aws_rds_promote_read_replica,
    &drb_aws_rds_reboot_db_instance,
    &drb_aws_rds_failover_db_cluster,
    &drb_aws_rds_describe_db_snapshots,
    &drb_aws_rds_restore_db_instance_to_point_in_time,
    &drb_aws_rds_restore_db_instance_from_snapshot,
    &drb_aws_route53_get_record,
    &drb_aws_route53_upsert_record,
    &drb_aws_route53_get_change,
    &drb_aws_route53_get_health_check_status,
    &drb_aws_route53_update_health_check,
    &drb_aws_ecs_describe_service,
    &drb_aws_ecs_update_service,
    &drb_aws_ecs_list_tasks,
    &drb_aws_ecs_stop_task,
    &drb_aws_sns_publish,
    &drb_aws_cloudwatch_put_metric_data,
    NULL,
};
