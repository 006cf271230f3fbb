/* drivers.c: walks over the driver table that DRIVER() rows build at link time (linker.ld: .drv_table.*). */
#include "driver.h"

int drv_probe_all(const struct drv_boot_info *bi)
{
	int n = 0;
	for (const struct driver *const *d = __drv_start; d < __drv_end; d++)
		n += (*d)->probe(bi);
	return n;
}

void drv_relocated(void)
{
	for (const struct driver *const *d = __drv_start; d < __drv_end; d++)
		if ((*d)->relocated)
			(*d)->relocated();
}
