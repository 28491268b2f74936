#!/usr/bin/env python3
"""Validate ONNX files with the reference checker and strict shape inference.

    python3 scripts/onnx_check.py model.onnx [more.onnx ...]

Prints one JSON line per file, in argument order:
    {"file": ..., "ok": true, "opset": N, "ir_version": N, "inputs": [...], "outputs": [...], "nodes": N}
    {"file": ..., "ok": false, "error": "..."}
Each input/output is {"name", "shape", "elem_type"}: shape is a list of ints, dim_param
strings or null (unknown), or null for an unranked tensor; elem_type is the TensorProto name
("FLOAT", "INT64", ...). "opset" is the default (ai.onnx) domain's.

Exit status: 0 all files passed, 1 at least one failed, 2 usage, 3 the onnx module is missing
(src/model/onnx-checker.ts tells that apart from a failing model).
"""

import json
import sys

EXIT_FAILED, EXIT_USAGE, EXIT_NO_ONNX = 1, 2, 3

try:
    import onnx
    from onnx import checker, shape_inference
except ImportError as e:  # the caller turns this into an install hint
    print(f"onnx_check: cannot import onnx ({e}); install python3-onnx", file=sys.stderr)
    sys.exit(EXIT_NO_ONNX)


def value_infos(values):
    out = []
    for v in values:
        t = v.type
        if t.HasField("tensor_type"):
            tt = t.tensor_type
            elem = onnx.TensorProto.DataType.Name(tt.elem_type)
            shape = None
            if tt.HasField("shape"):
                shape = []
                for d in tt.shape.dim:
                    if d.HasField("dim_value"):
                        shape.append(d.dim_value)
                    elif d.HasField("dim_param"):
                        shape.append(d.dim_param)
                    else:
                        shape.append(None)
        else:
            # sequence/map/optional types: no tensor shape to report
            elem, shape = t.WhichOneof("value"), None
        out.append({"name": v.name, "shape": shape, "elem_type": elem})
    return out


def check(path):
    model = onnx.load(path)
    # full_check runs strict, type-checked shape inference as well; it is run again below
    # to get the inferred graph, whose outputs carry shapes the file may have left out.
    checker.check_model(model, full_check=True)
    inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    g = inferred.graph
    initializers = {i.name for i in g.initializer}
    return {
        "opset": opset,
        "ir_version": model.ir_version,
        # Before IR 4 initializers had to be listed as inputs too; they are not inputs to feed.
        "inputs": value_infos(i for i in g.input if i.name not in initializers),
        "outputs": value_infos(g.output),
        "nodes": len(g.node),
    }


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return EXIT_USAGE
    failed = False
    for path in argv:
        try:
            line = {"file": path, "ok": True, **check(path)}
        except Exception as e:  # any failure is this file's result, not the script's
            failed = True
            # onnx's messages embed newlines (node dumps); one line keeps the output line-based
            msg = " ".join(str(e).split()) or repr(e)
            line = {"file": path, "ok": False, "error": f"{type(e).__name__}: {msg}"}
        print(json.dumps(line), flush=True)
    return EXIT_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
