/* qlc/artifact_format.h - the on-disk layout of a qlc artifact.
 *
 *   [ shared object (ELF) ][ pad to 4096 ][ weights ][ manifest JSON ][ footer ]
 *
 * The shared object comes first so the file itself can be dlopen'ed; the loader ignores
 * bytes past the ELF's segments. The weights start page-aligned and are memory-mapped.
 * The footer, the last 64 bytes of the file, locates the other parts.
 */
#ifndef QLC_ARTIFACT_FORMAT_H
#define QLC_ARTIFACT_FORMAT_H

#include <stdint.h>

#define QLC_ARTIFACT_MAGIC "QLCART\x01\x00"
#define QLC_ARTIFACT_FORMAT_VERSION 1u
#define QLC_ARTIFACT_PAGE 4096u

typedef struct qlc_artifact_footer {
  char magic[8];
  uint32_t format_version;
  uint32_t manifest_hash;   /* low 32 bits of XXH3-64 of the manifest bytes */
  uint64_t code_size;       /* the ELF shared object occupies [0, code_size) */
  uint64_t manifest_offset;
  uint64_t manifest_size;
  uint64_t weights_offset;  /* multiple of QLC_ARTIFACT_PAGE */
  uint64_t weights_size;
  uint64_t footer_hash;     /* XXH3-64 of the bytes of this struct before this field */
} qlc_artifact_footer;

#ifdef __cplusplus
static_assert(sizeof(qlc_artifact_footer) == 64, "footer must be 64 bytes");
#endif

#endif /* QLC_ARTIFACT_FORMAT_H */
