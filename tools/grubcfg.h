/* grubcfg.h: the `vhdtool grubcfg` subcommand (GRUB menu entries for the VHD files under a folder). */
#ifndef GRUBCFG_H
#define GRUBCFG_H

/* Its --help text. */
extern const char grubcfg_usage[];
/* Run `vhdtool grubcfg` with argv[0] = "grubcfg"; returns the exit code. */
int cmd_grubcfg(int argc, char **argv);

#endif
