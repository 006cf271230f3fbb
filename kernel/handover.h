/* handover.h: the firmware side of the hand-over table: build it from the chosen images; place it in reserved low memory (BIOS) or hand it sealed to a front end that publishes it (UEFI: efi/ehandover.c). */
#ifndef HANDOVER_H
#define HANDOVER_H

#include <stdint.h>
#include "../include/vhdboot_handover.h"

/* Note drive i's snapshot overlay pool (physical address, bytes) for its record. */
void handover_set_overlay(int i, uint32_t phys, uint32_t bytes);
/* Build the table for the nimg opened images (sel_image) under mode (CMDLINE_MODE_*); its size, or 0 (logged) if none. */
uint32_t handover_build(int nimg, int mode);
/* The built table sealed in place (self_phys 0, header flags |= flags: HO_F_*) for a front end that publishes it elsewhere (efi/ehandover.c); *bytes its size; NULL (0) if none was built. */
const void *handover_table(uint32_t flags, uint32_t *bytes);
/* Copy the built table to phys (in [low_phys, low_phys + low_bytes), vhdboot's reserved low memory) with its checksum. */
void handover_place(uint32_t phys, uint32_t low_phys, uint32_t low_bytes);

#endif
