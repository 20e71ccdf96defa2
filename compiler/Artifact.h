//===- Artifact.h - writing and reading qlc artifact files -----*- C++ -*-===//
#ifndef QLC_COMPILER_ARTIFACT_H
#define QLC_COMPILER_ARTIFACT_H

#include "codegen/Codegen.h"
#include "compiler/WeightStore.h"

#include "llvm/Support/Error.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace qlc {

/// Writes the artifact `out`: the compiled code at `codePath`, then `weights` packed from
/// `store` into their storage types, then `manifest` completed with the weight table
/// and checksums, then the footer (see qlc/artifact_format.h). The file appears under
/// its name only once complete: it is written beside it and renamed.
llvm::Error writeArtifact(const std::string &out, const std::string &codePath,
                          const std::vector<PackedWeight> &weights, const WeightStore &store,
                          nlohmann::json manifest,
                          const std::function<void(double)> &progress = {});

/// Reads and checks an artifact's footer and returns its manifest, for any target.
llvm::Expected<nlohmann::json> readArtifactManifest(const std::string &path);

} // namespace qlc

#endif // QLC_COMPILER_ARTIFACT_H
