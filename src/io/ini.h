/* ini.h - the INI dialect of AWS's shared config and credentials files,
 * read as botocore reads them: Python's configparser.RawConfigParser with
 * its defaults, then botocore's nested blocks (configloader.py).
 *
 * - Sections: "[name]" on a line of its own; the name is everything
 *   between the '[' and the line's last ']', untrimmed ("[a] x" is "a").
 *   "[DEFAULT]" is no section: its options are inherited by every section
 *   of the file (bh__ini_get falls back to it).
 * - Options: "key = value" or "key: value", split at the first '=' or ':';
 *   key and value trimmed, the key lower-cased. No inline comments:
 *   "k = v # c" has the value "v # c", as in botocore.
 * - A line indented deeper than its option's line continues the value
 *   (joined with '\n'). An option whose first line has no value and whose
 *   continuation lines are "k = v" is a nested block (botocore's
 *   "s3 =\n  addressing_style = path").
 * - Lines whose first non-blank character is '#' or ';' are comments;
 *   lines end in "\n", "\r\n" or "\r" and may be of any length; a leading
 *   UTF-8 byte-order mark is skipped (Python would reject it).
 * - Errors, as configparser's (which botocore turns into ConfigParseError):
 *   a line before the first section, a line that is neither a section nor
 *   "key = value", an empty key, a section or a key given twice, a line of
 *   a nested block without '='. Also a NUL byte, which Python would keep in
 *   the value and C strings cannot. The message is "path:line: what". */
#ifndef BH_INI_H
#define BH_INI_H

#include <stddef.h>

/* One "key = value" line of a nested block. */
typedef struct bh__ini_pair {
  char *key, *value;
} bh__ini_pair;

typedef struct bh__ini_opt {
  char *key;         /* lower-cased */
  char *value;       /* continuation lines joined with '\n' */
  bh__ini_pair *sub; /* a nested block's pairs, in file order */
  size_t nsub;       /* 0 unless the option is a nested block */
  int line;
} bh__ini_opt;

typedef struct bh__ini_sect {
  char *name;
  int line;
  bh__ini_opt *opts;
  size_t nopts, cap;
} bh__ini_sect;

typedef struct bh__ini {
  char *path;           /* as given, for messages */
  bh__ini_sect **sects; /* in file order */
  size_t nsects, cap;
  bh__ini_sect defaults; /* [DEFAULT]'s options (name NULL) */
} bh__ini;

/* Parses text[0..len) read from `path` (used in messages only). Returns 0
 * and an owned *out, BH_EINVAL with "path:line: what" in err, or
 * BH_ENOMEM. */
int bh__ini_parse(bh__ini **out, const char *path, const char *text, size_t len,
                  char *err, size_t errlen);
/* Reads and parses the file at `path`. A file that does not exist (ENOENT,
 * ENOTDIR) is no error: 0 with *out NULL. A file that exists but cannot be
 * read returns its -errno (-EISDIR for a directory) with a message. */
int bh__ini_read(bh__ini **out, const char *path, char *err, size_t errlen);
/* NULL is fine. */
void bh__ini_free(bh__ini *ini);

/* The section named `name` exactly, or NULL. Borrowed from ini. */
const bh__ini_sect *bh__ini_find(const bh__ini *ini, const char *name);
/* Option `key` (lower case) of section s, else of [DEFAULT]; NULL when
 * neither has it. *from (when not NULL) is the section it came from.
 * Borrowed from ini. */
const bh__ini_opt *bh__ini_get(const bh__ini *ini, const bh__ini_sect *s,
                               const char *key, const bh__ini_sect **from);
/* The value of `key` in the nested block o (the last line naming it), or
 * NULL when o is NULL, no block, or has no such key. */
const char *bh__ini_sub(const bh__ini_opt *o, const char *key);

#endif
