/*
 * h5z_lz4.h - the HDF5 filter class for LZ4 (id 32004), for programs that
 * link it rather than load it as a plugin.
 *
 * The recorder writes LZ4 chunks itself (h5lz4_encode + H5Dwrite_chunk), but
 * HDF5 still refuses to create a dataset whose pipeline names a mandatory
 * filter it cannot find. Registering the class once at startup makes filter
 * 32004 available without depending on HDF5_PLUGIN_PATH or on which plugin
 * is installed, and lets the recorder read its own files back. The plugin
 * module (libh5rec_lz4.so) hands out the very same class.
 */
#ifndef H5REC_H5Z_LZ4_H
#define H5REC_H5Z_LZ4_H

#include <hdf5.h>

/* The filter class: encoder and decoder both present; cd_values[0] is the
 * block size (absent or 0: whole chunk), checked against the format's
 * maximum when a dataset is created. */
extern const H5Z_class2_t h5z_lz4_class;

/*
 * Register the class with the HDF5 library of this process. Idempotent;
 * call from the thread that uses HDF5. Returns 0 or -EIO.
 */
int h5z_lz4_register(void);

#endif
