/* `drbook actions`: the action catalog printed from the registry's schemas, as text for
 * people, JSON for tools, Markdown for docs/actions.md (which a test keeps equal to it). */
#ifndef DRB_CLI_CATALOG_H
#define DRB_CLI_CATALOG_H

/* argv[0] is "actions". Returns the exit code (0, or 2 for a usage error). */
int drb_cli_actions(int argc, char **argv);

#endif
