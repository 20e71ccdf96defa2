# lit configuration for qlc's FileCheck tests.
import os

import lit.formats

config.name = "qlc"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = config.qlc_obj_root
config.environment["PATH"] = os.pathsep.join(
    [config.qlc_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")])
config.substitutions.append(("%fixtures", os.path.join(config.qlc_source_dir, "test", "fixtures")))
