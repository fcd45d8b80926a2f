/*
 * h5z_lz4_plugin.c - the two entry points that make libh5rec_lz4.so an HDF5
 * dynamically loaded filter plugin.
 *
 * HDF5's plugin loader dlopens every lib*.so* in its search path until one
 * answers H5PLget_plugin_type() == H5PL_TYPE_FILTER and hands out, through
 * H5PLget_plugin_info(), a class whose id is the one it is looking for. The
 * class lives in h5z_lz4.c, linked in statically together with the codec,
 * so the module needs nothing from h5rec's programs: only libhdf5 and liblz4
 * (the build links it with --no-undefined to keep it that way).
 */
#include <H5PLextern.h>

#include "h5z_lz4.h"

H5PL_type_t H5PLget_plugin_type(void)
{
	return H5PL_TYPE_FILTER;
}

const void *H5PLget_plugin_info(void)
{
	return &h5z_lz4_class;
}
