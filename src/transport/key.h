/* key.h - the hive's key on disk: 256 bits written as 64 hexadecimal
 * digits and a newline, in a file only its owner may read (as ssh wants of
 * a private key). The queen makes one or reads one; a joining worker
 * reads the same file (auth.h). */
#ifndef BH_KEY_H
#define BH_KEY_H

#include <stddef.h>

#include "transport/auth.h"

/* Reads the key in path into key. Returns 0, or BH_EINVAL with why: the
 * file cannot be opened, is not a regular file, can be read or written by
 * others than its owner ("chmod 600 F"), or does not hold 64 hexadecimal
 * digits. */
int bh__key_load(const char *path, unsigned char key[BH__KEY_LEN], char *why,
                 size_t len);
/* Draws a new key into key and writes it to path, a file that must not
 * exist yet, made with mode 0600 and appearing whole (written aside, then
 * linked). Returns 0, -EEXIST when path exists (made meanwhile by
 * another: load it), or an error with why. A file not owned by this
 * user is refused by bh__key_load too. */
int bh__key_make(const char *path, unsigned char key[BH__KEY_LEN], char *why,
                 size_t len);

#endif
