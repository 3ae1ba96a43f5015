"""Vendor KaTeX into the review UI, or check the vendored copy against the npm registry.

    python scripts/vendor_katex.py            # fetch the pinned release and write the files
    python scripts/vendor_katex.py --check    # fetch it again and compare, byte for byte
    python scripts/vendor_katex.py --offline  # compare the files with VENDORED.json only (no network)

The review UI renders math with KaTeX shipped inside the package (the page loads nothing from
the network and its Content-Security-Policy allows only its own origin). The copy comes from
the release tarball `npm pack katex@VERSION` downloads; the tarball's sha512 must equal the
pinned INTEGRITY (the value the npm registry publishes as `dist.integrity`), so a rebuild gives
the same bytes. Kept from the tarball: the licence, the minified script and stylesheet, and the
fonts in WOFF2 (every browser the UI supports reads WOFF2; the stylesheet's WOFF and TTF
fallbacks are left out, which keeps ~900 KB out of the wheel). VENDORED.json lists each kept
file with its sha256: the server serves exactly those files, and the tests check them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "0.19.1"
INTEGRITY = "sha512-jG8uKntjSEcm2EpQOh0XturpPuuC9r3Sq5HLHdsFdWZT27E672SF19QEi+of0/YeOy15lDgRhKvr5614uRrEfA=="
TARGET = Path(__file__).resolve().parent.parent / "splitreason" / "review_ui" / "static" / "katex"
MANIFEST = "VENDORED.json"


def kept(member: str) -> str | None:
    """The path under TARGET for a tarball member we keep, else None."""
    name = member.removeprefix("package/")
    if name == "LICENSE":
        return "LICENSE"
    if name in ("dist/katex.min.js", "dist/katex.min.css"):
        return name.removeprefix("dist/")
    if name.startswith("dist/fonts/") and name.endswith(".woff2") and name.count("/") == 2:
        return name.removeprefix("dist/")
    return None


def fetch_tarball(folder: Path) -> bytes:
    """`npm pack katex@VERSION` into `folder`; the tarball's bytes, checked against INTEGRITY."""
    if shutil.which("npm") is None:
        sys.exit("npm is needed to fetch KaTeX (apt-get install npm); --offline checks without it")
    done = subprocess.run(["npm", "pack", f"katex@{VERSION}", "--json", "--pack-destination", str(folder)],
                          capture_output=True, text=True, cwd=folder)
    if done.returncode != 0:
        sys.exit(f"npm pack katex@{VERSION} failed: {done.stderr.strip().splitlines()[-1:]}")
    [packed] = json.loads(done.stdout)
    data = (folder / packed["filename"]).read_bytes()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        sys.exit(f"katex@{VERSION} tarball has {digest}, pinned {INTEGRITY}: refusing to vendor it")
    return data


def files_from(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as archive:
        found = {}
        for member in archive.getmembers():
            target = kept(member.name)
            if target is not None and member.isfile():
                found[target] = archive.extractfile(member).read()
    if not {"LICENSE", "katex.min.js", "katex.min.css"} <= set(found) or not any(n.startswith("fonts/") for n in found):
        sys.exit(f"katex@{VERSION} tarball lacks the files the review UI needs")
    return found


def manifest_for(found: dict[str, bytes]) -> dict:
    return {"package": "katex", "version": VERSION, "integrity": INTEGRITY,
            "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(found.items())}}


def check_offline() -> list[str]:
    """What differs between TARGET and its VENDORED.json; empty when the copy is intact."""
    manifest = json.loads((TARGET / MANIFEST).read_text())
    problems = [] if manifest["version"] == VERSION else [f"VENDORED.json has {manifest['version']}, pinned {VERSION}"]
    for name, digest in manifest["files"].items():
        path = TARGET / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name} differs from VENDORED.json")
    listed = set(manifest["files"]) | {MANIFEST}
    problems += [f"{p.relative_to(TARGET)} is not in VENDORED.json" for p in TARGET.rglob("*")
                 if p.is_file() and str(p.relative_to(TARGET)) not in listed]
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fetch the release and compare with the vendored copy")
    mode.add_argument("--offline", action="store_true", help="compare the vendored copy with VENDORED.json")
    args = parser.parse_args()
    if args.offline:
        problems = check_offline()
        print("\n".join(problems) or f"katex {VERSION}: vendored copy matches VENDORED.json")
        sys.exit(1 if problems else 0)
    with tempfile.TemporaryDirectory() as tmp:
        fetch_tarball(Path(tmp))
        found = files_from(next(Path(tmp).glob("katex-*.tgz")))
    manifest = manifest_for(found)
    if args.check:
        on_disk = json.loads((TARGET / MANIFEST).read_text()) if (TARGET / MANIFEST).exists() else None
        problems = check_offline() if on_disk == manifest else ["VENDORED.json differs from the release"]
        print("\n".join(problems) or f"katex {VERSION}: vendored copy equals the release")
        sys.exit(1 if problems else 0)
    if TARGET.exists():
        shutil.rmtree(TARGET)
    for name, data in found.items():
        (TARGET / name).parent.mkdir(parents=True, exist_ok=True)
        (TARGET / name).write_bytes(data)
    (TARGET / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"katex {VERSION}: wrote {len(found)} files to {TARGET}")


if __name__ == "__main__":
    main()
