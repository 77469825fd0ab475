"""Pack files into a one-layer OCI image archive that `ctr images import` and `docker load` accept.

No registry, no Docker: the real node's pause and sample-app images are made with this.

    python3 pack.py OUT.tar --file BIN:/app --entrypoint /app \
        --image local.test/sample-app:v1=APP_VERSION=v1 \
        --image local.test/sample-app:v2=APP_VERSION=v2

Each --image NAME[=K=V,K=V] is one image (same layer, its own config env) in the archive. The
output is byte-for-byte reproducible (mtime 0, sorted keys), so re-importing it changes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

OCI = "application/vnd.oci.image"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _blob(out: tarfile.TarFile, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    _add(out, f"blobs/sha256/{digest}", data)
    return f"sha256:{digest}"


def _add(out: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    out.addfile(info, io.BytesIO(data))


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def layer(files: list[tuple[Path, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode, tmp.mtime = tarfile.DIRTYPE, 0o1777, 0
        tar.addfile(tmp)
        for src, dest in files:
            _add(tar, dest.lstrip("/"), src.read_bytes(), mode=0o755)
    return buf.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--file", action="append", default=[], help="SRC:/DEST in the image")
    p.add_argument("--entrypoint", required=True)
    p.add_argument("--user", default="65532:65532")
    p.add_argument("--image", action="append", required=True, help="NAME[=K=V,K=V]")
    args = p.parse_args()

    files = [(Path(src), dest) for src, dest in (f.split(":", 1) for f in args.file)]
    diff = layer(files)
    index = []
    with tarfile.open(args.out, "w") as out:
        _add(out, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        layer_digest = _blob(out, diff)
        for spec in args.image:
            name, _, env = spec.partition("=")
            config = {
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "Entrypoint": [args.entrypoint],
                    "Env": [PATH_ENV, *(e for e in env.split(",") if e)],
                    "User": args.user,
                },
                "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            }
            config_bytes = _json(config)
            manifest = _json(
                {
                    "schemaVersion": 2,
                    "mediaType": f"{OCI}.manifest.v1+json",
                    "config": {
                        "mediaType": f"{OCI}.config.v1+json",
                        "digest": _blob(out, config_bytes),
                        "size": len(config_bytes),
                    },
                    "layers": [
                        {
                            "mediaType": f"{OCI}.layer.v1.tar",
                            "digest": layer_digest,
                            "size": len(diff),
                        }
                    ],
                }
            )
            index.append(
                {
                    "mediaType": f"{OCI}.manifest.v1+json",
                    "digest": _blob(out, manifest),
                    "size": len(manifest),
                    "annotations": {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rpartition(":")[2],
                    },
                }
            )
        _add(out, "index.json", _json({"schemaVersion": 2, "manifests": index}))


if __name__ == "__main__":
    main()
