/* pci.h: PCI configuration mechanism 1 (ports CF8h/CFCh): enumeration by class, BAR decoding, command-register enables; shared by every PCI driver. */
#ifndef PCI_H
#define PCI_H

#include <stdint.h>

/* Configuration-space offsets (type 0 header). */
#define PCI_VENDOR 0x00
#define PCI_DEVICE 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_PROGIF 0x09
#define PCI_SUBCLASS 0x0A
#define PCI_CLASS 0x0B
#define PCI_HEADER 0x0E
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34

#define PCI_HEADER_TYPE_MASK 0x7F
#define PCI_HEADER_MULTI 0x80      /* a multi-function device: functions 1..7 may exist */

/* Command register bits. */
#define PCI_CMD_IO 0x0001
#define PCI_CMD_MEM 0x0002
#define PCI_CMD_MASTER 0x0004

#define PCI_MAX_BARS 6
#define PCI_ANY (-1)               /* pci_find_class: any programming interface */

/* One PCI function. */
struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint8_t cls, subclass, progif;
	uint8_t header;            /* header type without the multi-function bit */
};

/* A decoded base address register. */
struct pci_bar {
	uint64_t base;             /* address (memory) or port (I/O); 0: BAR unused or unassigned */
	uint64_t size;             /* bytes it decodes (from sizing) */
	uint8_t io;                /* 1: I/O space */
	uint8_t is64;              /* memory BAR spanning two registers */
	uint8_t prefetch;
};

/* Nonzero when configuration mechanism 1 answers (probed once, remembered). */
int pci_present(void);
/* Configuration reads/writes of d at off (aligned to the access size). */
uint32_t pci_read32(const struct pci_dev *d, uint8_t off);
uint16_t pci_read16(const struct pci_dev *d, uint8_t off);
uint8_t pci_read8(const struct pci_dev *d, uint8_t off);
void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v);
void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v);
/*
 * Every function of class cls / subclass sub (/ progif, or PCI_ANY) on
 * buses 0..255, in bus/device/function order (functions 1..7 only of
 * multi-function devices): up to max into out. Returns the count found
 * (may exceed max; only max are stored).
 */
int pci_find_class(uint8_t cls, uint8_t sub, int progif, struct pci_dev *out, int max);
/*
 * Decode BAR i (0..5) of a type-0 function, sizing it with decoding
 * switched off for the moment (the command register is restored).
 * Returns 0, or -1 when i is out of range or the upper half of a 64-bit BAR.
 */
int pci_bar(const struct pci_dev *d, int i, struct pci_bar *out);
/* Set bits (PCI_CMD_*) in the command register; returns the register as it was before. */
uint16_t pci_enable(const struct pci_dev *d, uint16_t bits);
/* "bb:dd.f" into buf (at least 8 bytes). */
void pci_name(const struct pci_dev *d, char *buf);

#endif
