"""The image store and its commands (issue 14): load of docker-archive,
oci-archive, OCI layouts (zstd too, multi-image, platform from an index),
the unpacked tree against umoci's, shared layers, rmi and prune, SIGKILL
during load, and bad archives (each one line, exit 125, the store as it
was). Every image is built here from the busybox rootfs with umoci and
skopeo (imagekit.py); each test has its own MINICONTAINER_DATA under tmp.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time

import pytest

import imagekit as ik
from conftest import BIN, ROOTFS, mc as run_mc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

REF = "mc-test/busybox:1"
THREE = "mc-test/three:1"


@pytest.fixture(scope="module")
def images(tmp_path_factory, rootfs):
    """The test images, built once: busybox ("base") and the three-layer
    image ("three", sharing its first layer), in a layout and as archives."""
    root = tmp_path_factory.mktemp("images")
    lay = ik.busybox_layout(str(root), rootfs)
    ik.three_layer(lay, rootfs)
    lay.copy_tag("base", "docker.io/" + REF)
    lay.copy_tag("three", "docker.io/" + THREE)
    out = {"root": str(root), "layout": lay}
    out["base-docker"] = ik.to_docker_archive(lay, "base", str(root / "base-docker.tar"), REF)
    out["base-oci"] = ik.to_oci_archive(lay, "base", str(root / "base-oci.tar"), "docker.io/" + REF)
    out["three-docker"] = ik.to_docker_archive(lay, "three", str(root / "three-docker.tar"), THREE)
    out["three-oci"] = ik.to_oci_archive(lay, "three", str(root / "three-oci.tar"), "docker.io/" + THREE)
    z = ik.to_zstd_layout(lay, "three", str(root / "zstd-layout"), "docker.io/mc-test/zstd:1")
    out["zstd-layout"] = z.path
    out["zstd-oci"] = ik.tar_dir(z.path, str(root / "zstd-oci.tar"))
    out["umoci-three"] = ik.umoci_tree(lay, "three", str(root))
    yield out
    shutil.rmtree(str(root), ignore_errors=True)


@pytest.fixture
def store(tmp_path):
    """A data dir of its own; no mounts may be left below tmp."""
    data = tmp_path / "data"
    env = dict(os.environ, MINICONTAINER_DATA=str(data))
    s = Store(env, str(data), tmp_path)
    yield s
    with open("/proc/self/mountinfo") as f:
        left = [l.split()[4] for l in f if str(tmp_path) in l.split()[4]]
    for m in reversed(left):
        subprocess.run(["umount", "-l", m])
    assert not left, f"mounts left: {left}"


class Store:
    def __init__(self, env, data, tmp):
        self.env = env
        self.data = data
        self.tmp = tmp
        self.images = os.path.join(data, "images")

    def mc(self, *args, **kw):
        kw.setdefault("timeout", 300)
        return run_mc(*args, env=self.env, **kw)

    def ok(self, *args, **kw):
        r = self.mc(*args, **kw)
        assert r.returncode == 0, f"{args}: {r.returncode}: {r.stderr}"
        return r.stdout

    def fails(self, *args, contains=None, **kw):
        """A failure: exit 125, one line on stderr (naming `contains`)."""
        r = self.mc(*args, **kw)
        assert r.returncode == 125, f"{args}: expected 125, got {r.returncode}: {r.stdout} {r.stderr}"
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line: {r.stderr!r}"
        if contains:
            for c in ([contains] if isinstance(contains, str) else contains):
                assert c in lines[0], f"{c!r} not in {lines[0]!r}"
        return lines[0]

    def inspect(self, ref):
        return json.loads(self.ok("image", "inspect", ref))[0]

    def listing(self):
        return ik.store_listing(self.data)

    def index(self):
        with open(os.path.join(self.images, "index.json")) as f:
            return json.load(f)

    def layer_dirs(self):
        return sorted(os.listdir(os.path.join(self.images, "layers")))


def assert_consistent(s):
    """The store's invariants: a valid layout; every image listed resolves;
    every blob's name is its digest; every layer directory is complete; no
    work directory or lock is left once a command has run."""
    assert os.path.exists(os.path.join(s.images, "oci-layout"))
    idx = s.index()
    blobs = os.path.join(s.images, "blobs", "sha256")
    for name in os.listdir(blobs):
        with open(os.path.join(blobs, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == name, f"blob {name} is corrupt"
    for m in idx["manifests"]:
        assert os.path.exists(os.path.join(blobs, m["digest"].split(":")[1]))
        s.ok("image", "inspect", m["annotations"]["org.minicontainer.image.id"])
    for l in s.layer_dirs():
        d = os.path.join(s.images, "layers", l)
        assert os.path.isdir(d + "/root") and os.path.exists(d + "/layer.json"), f"incomplete layer {l}"
    assert os.listdir(os.path.join(s.images, "tmp")) == []
    assert os.listdir(os.path.join(s.images, "locks")) == []


# MARK: - load and the store's layout

def test_load_oci_archive_lists_and_is_a_layout(store, images):
    out = store.ok("load", "-i", images["base-oci"])
    assert out == f"Loaded image: {REF}\n"
    table = store.ok("images").splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert table[1].split()[:2] == ["mc-test/busybox", "1"]
    ids = store.ok("images", "-q").split()
    assert len(ids) == 1 and len(ids[0]) == 12
    js = json.loads(store.ok("images", "--format", "json"))
    assert js[0]["references"] == ["docker.io/" + REF] and js[0]["id"].startswith("sha256:" + ids[0])
    # skopeo and umoci read the store as an OCI layout, by the full name.
    info = json.loads(ik.sh("skopeo", "inspect", f"oci:{store.images}:docker.io/{REF}"))
    assert info["Layers"] and info["Os"] == "linux"
    assert ik.sh("umoci", "ls", "--layout", store.images).split() == ["docker.io/" + REF]
    # By id, id prefix, familiar and full name.
    full = js[0]["id"]
    for r in [full, full[7:], ids[0][:5], REF, "docker.io/" + REF, "index.docker.io/" + REF]:
        assert store.inspect(r)["Id"] == full, r
    assert_consistent(store)


@pytest.mark.parametrize("kind", ["three-docker", "three-oci", "layout", "zstd-layout", "zstd-oci"])
def test_three_layer_tree_is_umocis(store, images, kind):
    """A later layer deletes a file and replaces a directory (opaque): the
    overlay of our layer directories shows exactly umoci unpack's tree."""
    src = images[kind] if kind != "layout" else images["layout"].path
    out = store.ok("load", "-i", src)
    ref = "mc-test/zstd:1" if kind.startswith("zstd") else THREE
    assert f"Loaded image: {ref}\n" in out
    info = store.inspect(ref)
    dirs = [l["Dir"] for l in info["Layers"]]
    assert len(dirs) == 3
    if kind.startswith("zstd"):
        assert all(l["MediaType"].endswith("+zstd") for l in info["Layers"])
    ours = ik.overlay_tree(dirs)
    theirs = images["umoci-three"]
    assert "etc/delete-me" not in ours and "data/keep.txt" not in ours and "data/new.txt" in ours
    assert ours["opt/passwd-link"] == ours["etc/passwd"]
    diff = {k: (ours.get(k), theirs.get(k)) for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)}
    assert not diff, f"trees differ: {diff}"
    assert info["Config"]["Entrypoint"] == ["/opt/tool"] and info["Config"]["WorkingDir"] == "/data"
    assert info["Config"]["Labels"] == {"stage": "three"}
    assert_consistent(store)


def test_docker_archive_and_save_round_trip(store, images, tmp_path):
    assert store.ok("load", "-i", images["base-docker"]) == f"Loaded image: {REF}\n"
    img = store.inspect(REF)
    for fmt, transport in [("oci-archive", "oci-archive"), ("docker-archive", "docker-archive")]:
        out = str(tmp_path / f"saved-{fmt}.tar")
        store.ok("save", "-o", out, "--format", fmt, REF)
        info = json.loads(ik.sh("skopeo", "inspect", f"{transport}:{out}"))
        assert info["Os"] == "linux"
        # Into a fresh store: the same image id.
        other = Store(dict(store.env, MINICONTAINER_DATA=str(tmp_path / fmt)), str(tmp_path / fmt), tmp_path)
        assert other.ok("load", "-i", out) == f"Loaded image: {REF}\n"
        assert other.inspect(REF)["Id"] == img["Id"]
        assert_consistent(other)
    # stdout, when it is not a terminal.
    with open(tmp_path / "stdout.tar", "wb") as f:
        r = subprocess.run([BIN, "save", REF], env=store.env, stdout=f, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    assert tarfile.open(tmp_path / "stdout.tar").getmember("index.json")


def test_load_from_stdin_and_gzip_archive(store, images, tmp_path):
    with open(images["base-docker"], "rb") as f:
        raw = f.read()
    gz = tmp_path / "base.tar.gz"
    gz.write_bytes(gzip.compress(raw, 1))
    with open(gz, "rb") as f:
        r = subprocess.run([BIN, "load"], env=store.env, stdin=f, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == f"Loaded image: {REF}\n", r.stderr


def test_multi_image_archives(store, images, tmp_path):
    # docker-archive with two images: manifest.json of both, files merged.
    merged = tmp_path / "multi"
    merged.mkdir()
    entries = []
    for a in [images["base-docker"], images["three-docker"]]:
        with tarfile.open(a) as t:
            t.extractall(merged)
            entries += json.load(t.extractfile("manifest.json"))
    (merged / "manifest.json").write_text(json.dumps(entries))
    os.unlink(merged / "repositories")
    out = store.ok("load", "-i", ik.tar_dir(str(merged), str(tmp_path / "multi.tar")))
    assert out.splitlines() == [f"Loaded image: {REF}", f"Loaded image: {THREE}"]
    # An OCI layout with both, by full names, as an archive.
    lay = ik.Layout(str(tmp_path / "two"))
    ik.skopeo_copy(f"oci-archive:{images['base-oci']}", f"oci:{lay.path}:docker.io/mc-test/a:1")
    ik.skopeo_copy(f"oci-archive:{images['three-oci']}", f"oci:{lay.path}:localhost:5000/mc-test/b:2")
    other = Store(dict(store.env, MINICONTAINER_DATA=str(tmp_path / "d2")), str(tmp_path / "d2"), tmp_path)
    out = other.ok("load", "-i", ik.tar_dir(lay.path, str(tmp_path / "two.tar")))
    assert out.splitlines() == ["Loaded image: mc-test/a:1", "Loaded image: localhost:5000/mc-test/b:2"]
    assert other.inspect("localhost:5000/mc-test/b:2")["Id"] == store.inspect(THREE)["Id"]
    assert_consistent(other)


def platform_layout(images, tmp_path):
    """An index with an amd64 and an arm64 image (the arm64 one is the same
    layers under a config that says arm64)."""
    lay = ik.Layout(str(tmp_path / "multiarch"))
    ik.skopeo_copy(f"oci-archive:{images['base-oci']}", f"oci:{lay.path}:amd")
    desc, man = lay.manifest_of("amd")
    cfg = json.loads(lay.read_blob(man["config"]["digest"]))
    cfg["architecture"] = "arm64"
    cd, cs = lay.write_blob(json.dumps(cfg).encode())
    arm = dict(man, config=dict(man["config"], digest=cd, size=cs))
    md, ms = lay.write_blob(json.dumps(arm).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": desc["mediaType"], "digest": md, "size": ms, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"], "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    idd, ids = lay.write_blob(json.dumps(index).encode())
    lay.set_index({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idd, "size": ids,
         "annotations": {"org.opencontainers.image.ref.name": "docker.io/mc-test/multi:1"}}]})
    return lay.path


def test_platform_selection_from_an_index(store, images, tmp_path):
    lay = platform_layout(images, tmp_path)
    store.ok("load", "-i", images["three-oci"])
    before = store.listing()
    line = store.fails("load", "-i", lay, "--platform", "linux/s390x", contains=["linux/s390x", "linux/arm64/v8", "linux/amd64"])
    assert store.listing() == before, line
    store.ok("load", "-i", lay)
    assert store.inspect("mc-test/multi:1")["Architecture"] == "amd64"
    store.ok("load", "-i", lay, "--platform", "linux/arm64")
    assert store.inspect("mc-test/multi:1")["Architecture"] == "arm64"
    # The amd64 one is still there, untagged now.
    rows = json.loads(store.ok("images", "--format", "json"))
    assert sorted(r["tag"] for r in rows) == ["1", "1", "<none>"]
    store.fails("load", "-i", lay, "--platform", "linux", contains="--platform")


# MARK: - shared layers, rmi, prune

def test_shared_layers_one_copy_and_rmi(store, images):
    store.ok("load", "-i", images["base-oci"])
    store.ok("load", "-i", images["three-docker"])
    # base's one layer is three's first: three layer directories in all.
    assert len(store.layer_dirs()) == 3
    assert store.inspect(REF)["Layers"][0]["Dir"] == store.inspect(THREE)["Layers"][0]["Dir"]
    out = store.ok("rmi", REF)
    assert out.startswith(f"Untagged: {REF}\nDeleted: sha256:")
    assert len(store.layer_dirs()) == 3
    info = store.inspect(THREE)
    assert ik.overlay_tree([l["Dir"] for l in info["Layers"]]) == images["umoci-three"]
    store.fails("image", "inspect", REF, contains=f"no such image: {REF}")
    store.ok("rmi", THREE)
    assert store.layer_dirs() == [] and os.listdir(os.path.join(store.images, "blobs", "sha256")) == []
    assert store.index()["manifests"] == []


def fake_container(store, image_id, cid="c" * 64):
    """A run-mode container's config.json naming its image (what run IMAGE writes)."""
    d = os.path.join(store.data, "containers", cid)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"ociVersion": "1.0.2", "annotations": {"org.minicontainer.image.id": image_id}}, f)
    return d


def test_rmi_refuses_an_image_in_use_and_prune_keeps_it(store, images):
    store.ok("load", "-i", images["base-oci"])
    store.ok("load", "-i", images["three-oci"])
    store.ok("tag", REF, "mc-test/other:2")
    assert store.inspect("mc-test/other:2")["Id"] == store.inspect(REF)["Id"]
    assert store.ok("rmi", "mc-test/other:2") == "Untagged: mc-test/other:2\n"
    used = store.inspect(THREE)["Id"]
    cdir = fake_container(store, used)
    store.fails("rmi", THREE, contains=["used by container", "cccccccccccc"])
    store.fails("rmi", used[7:19], contains="used by container")
    # -f: untagged, still there while the container is.
    assert store.ok("rmi", "-f", THREE) == f"Untagged: {THREE}\n"
    assert store.inspect(used)["Id"] == used
    # prune -a removes the unused busybox only; three's layers stay.
    out = store.ok("image", "prune", "-a")
    assert f"untagged: {REF}" in out and "Total reclaimed space:" in out
    assert store.inspect(used)["Id"] == used and len(store.layer_dirs()) == 3
    store.fails("image", "inspect", REF, contains="no such image")
    df = store.ok("system", "df")
    assert df.splitlines()[1].split()[:3] == ["Images", "1", "1"]
    shutil.rmtree(cdir)
    out = store.ok("image", "prune")
    assert "deleted: " + used in out
    assert store.layer_dirs() == []
    assert_consistent(store)


def test_tag_and_reference_errors(store, images):
    store.ok("load", "-i", images["base-oci"])
    for bad in ["a,b", "x/UPPER", "x:..", "a" * 64, "x:" + "t" * 129, "x\ny", "../x", "x:-tag", "a//b"]:
        store.fails("tag", REF, bad, contains="invalid reference")
    store.fails("tag", REF, "x@sha256:" + "a" * 64, contains="digest")
    store.fails("tag", "nope:1", "x:1", contains="no such image: nope:1")
    store.fails("rmi", "nope", contains="no such image: nope")
    store.fails("save", "-o", str(store.tmp / "x.tar"), "nope", contains="no such image: nope")
    assert not os.path.exists(store.tmp / "x.tar")
    # Nothing but digests' hex names a file in the store.
    hexname = lambda n: len(n) == 64 and all(c in "0123456789abcdef" for c in n)
    assert set(os.listdir(store.images)) == {"oci-layout", "index.json", ".lock", ".gc.lock", "blobs", "layers", "tmp", "locks", "overlay-xattrs"}
    assert all(hexname(n) for n in os.listdir(os.path.join(store.images, "blobs", "sha256")))
    assert all(hexname(n) for n in store.layer_dirs())


def test_import_flat_rootfs(store, rootfs, tmp_path):
    tb = tmp_path / "rootfs.tar.gz"
    with tarfile.open(tb, "w:gz") as t:
        for name in sorted(os.listdir(rootfs)):
            t.add(os.path.join(rootfs, name), arcname=name)
    with open(tb, "rb") as f:
        r = subprocess.run([BIN, "import", "-", "mc-test/imported:1"], env=store.env, stdin=f, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    image_id = r.stdout.strip()
    info = store.inspect("mc-test/imported:1")
    assert info["Id"] == image_id and len(info["Layers"]) == 1
    assert info["Layers"][0]["MediaType"].endswith("+gzip")
    assert ik.tree(info["Layers"][0]["Dir"]) == ik.tree(rootfs)
    # Without a reference: untagged, listed as <none>.
    r2 = store.ok("import", str(tb))
    assert r2.strip().startswith("sha256:")
    assert_consistent(store)


# MARK: - bad input: one line, exit 125, the store as it was

def rewrite_oci(src, dst, change):
    """Copies an oci-archive, letting change(files) edit {name: bytes}."""
    with tarfile.open(src) as t:
        files = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
    change(files)
    with tarfile.open(dst, "w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return dst


def oci_parts(files):
    idx = json.loads(files["index.json"])
    mname = "blobs/sha256/" + idx["manifests"][0]["digest"].split(":")[1]
    return idx, mname, json.loads(files[mname])


def put_manifest(files, idx, man):
    data = json.dumps(man).encode()
    d = hashlib.sha256(data).hexdigest()
    files["blobs/sha256/" + d] = data
    idx["manifests"][0].update(digest="sha256:" + d, size=len(data))
    files["index.json"] = json.dumps(idx).encode()


def bad_truncated(images, tmp):
    data = open(images["three-oci"], "rb").read()
    p = tmp / "truncated.tar"
    p.write_bytes(data[: len(data) * 2 // 3])
    return p, ["truncated.tar"]


def bad_wrong_digest(images, tmp):
    def change(files):
        _, _, man = oci_parts(files)
        name = "blobs/sha256/" + man["layers"][-1]["digest"].split(":")[1]
        b = bytearray(files[name])
        b[len(b) // 2] ^= 0xff
        files[name] = bytes(b)
    return rewrite_oci(images["three-oci"], tmp / "digest.tar", change), ["digest mismatch"]


def bad_size(images, tmp):
    def change(files):
        idx, _, man = oci_parts(files)
        man["layers"][0]["size"] += 1
        put_manifest(files, idx, man)
    return rewrite_oci(images["three-oci"], tmp / "size.tar", change), ["size mismatch"]


def bad_schema1(images, tmp):
    def change(files):
        idx, _, man = oci_parts(files)
        idx["manifests"][0]["mediaType"] = "application/vnd.docker.distribution.manifest.v1+prettyjws"
        files["index.json"] = json.dumps(idx).encode()
    return rewrite_oci(images["three-oci"], tmp / "schema1.tar", change), ["schema 1", "unsupported media type"]


def bad_foreign_layer(images, tmp):
    def change(files):
        idx, _, man = oci_parts(files)
        man["layers"][1]["mediaType"] = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        put_manifest(files, idx, man)
    return rewrite_oci(images["three-oci"], tmp / "foreign.tar", change), ["foreign", "layers[1].mediaType"]


def bad_diff_id(images, tmp):
    def change(files):
        idx, _, man = oci_parts(files)
        cname = "blobs/sha256/" + man["config"]["digest"].split(":")[1]
        cfg = json.loads(files[cname])
        cfg["rootfs"]["diff_ids"][2] = "sha256:" + "0" * 64
        data = json.dumps(cfg).encode()
        d = hashlib.sha256(data).hexdigest()
        files["blobs/sha256/" + d] = data
        man["config"].update(digest="sha256:" + d, size=len(data))
        put_manifest(files, idx, man)
    return rewrite_oci(images["three-oci"], tmp / "diffid.tar", change), ["diff_ids[2]"]


def bad_truncated_gzip(images, tmp):
    def change(files):
        idx, _, man = oci_parts(files)
        layer = man["layers"][2]
        name = "blobs/sha256/" + layer["digest"].split(":")[1]
        data = files[name][: len(files[name]) // 2]
        d = hashlib.sha256(data).hexdigest()
        files["blobs/sha256/" + d] = data
        layer.update(digest="sha256:" + d, size=len(data))
        put_manifest(files, idx, man)
    return rewrite_oci(images["three-oci"], tmp / "gzip.tar", change), ["layer 3"]


def bad_missing_blob(images, tmp):
    def change(files):
        _, _, man = oci_parts(files)
        del files["blobs/sha256/" + man["layers"][0]["digest"].split(":")[1]]
    return rewrite_oci(images["three-oci"], tmp / "missing.tar", change), ["not in the archive"]


def bad_json(images, tmp):
    def change(files):
        idx, _, man = oci_parts(files)
        man["layers"][1]["size"] = "12"
        put_manifest(files, idx, man)
    return rewrite_oci(images["three-oci"], tmp / "json.tar", change), ["layers[1].size: expected integer, found string"]


def bad_traversal_layer(images, tmp):
    def change(files):
        idx, _, man = oci_parts(files)
        buf = io.BytesIO()
        ik.write_tar(buf, [{"name": "../../escaped", "data": b"x"}])
        data = buf.getvalue()
        d = hashlib.sha256(data).hexdigest()
        files["blobs/sha256/" + d] = data
        cname = "blobs/sha256/" + man["config"]["digest"].split(":")[1]
        cfg = json.loads(files[cname])
        cfg["rootfs"]["diff_ids"].append("sha256:" + d)
        cdata = json.dumps(cfg).encode()
        cd = hashlib.sha256(cdata).hexdigest()
        files["blobs/sha256/" + cd] = cdata
        man["config"].update(digest="sha256:" + cd, size=len(cdata))
        man["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + d, "size": len(data)})
        put_manifest(files, idx, man)
    return rewrite_oci(images["three-oci"], tmp / "traversal.tar", change), ["layer 4"]


def bad_not_tar(images, tmp):
    p = tmp / "garbage.tar"
    p.write_bytes(os.urandom(4096))
    return p, ["garbage.tar"]


def bad_empty_dir(images, tmp):
    d = tmp / "emptydir"
    d.mkdir()
    return d, ["neither a docker-archive"]


@pytest.mark.parametrize("make", [bad_truncated, bad_wrong_digest, bad_size, bad_schema1, bad_foreign_layer, bad_diff_id,
                                  bad_truncated_gzip, bad_missing_blob, bad_json, bad_traversal_layer, bad_not_tar, bad_empty_dir],
                         ids=lambda f: f.__name__[4:])
def test_bad_archive_changes_nothing(store, images, tmp_path, make):
    store.ok("load", "-i", images["base-oci"])
    before = store.listing()
    path, words = make(images, tmp_path)
    store.fails("load", "-i", str(path), contains=words)
    assert store.listing() == before
    assert not os.path.exists(tmp_path.parent / "escaped") and not os.path.exists(tmp_path / "escaped")
    assert_consistent(store)


def test_usage_errors_and_aliases(store, images):
    store.fails("image", contains="image: needs a subcommand: ls, inspect")
    store.fails("image", "nope", contains="unknown command \"image nope\"")
    store.fails("images", "--format", "yaml", contains="--format must be table, json or a Go template")
    store.fails("save", "-o", str(store.tmp / "x.tar"), "--format", "tar", REF, contains="oci-archive or docker-archive")
    store.fails("load", "-i", images["base-oci"], "--platform", "linux", contains="os/arch")
    store.fails("import", contains="import: needs a tarball")
    assert store.ok("image", "load", "-i", images["base-oci"]) == f"Loaded image: {REF}\n"
    store.ok("image", "tag", REF, "mc-test/alias:1")
    assert sorted(l.split()[:2] for l in store.ok("image", "ls").splitlines()[1:]) == [["mc-test/alias", "1"], ["mc-test/busybox", "1"]]
    assert store.ok("images", "mc-test/alias").count("\n") == 2
    assert store.ok("image", "rm", "mc-test/alias:1") == "Untagged: mc-test/alias:1\n"
    assert "image ls" in store.ok("image", "ls", "--help")


def test_unknown_reference_and_missing_file(store, images):
    store.ok("load", "-i", images["base-oci"])
    before = store.listing()
    store.fails("image", "inspect", "nosuch:tag", contains="no such image: nosuch:tag")
    store.fails("load", "-i", str(store.tmp / "nofile.tar"), contains="nofile.tar")
    store.fails("load", "-i", images["base-oci"], "--platform", "linux/arm64", contains="not linux/arm64")
    assert store.listing() == before


def test_full_disk(store, images, tmp_path):
    """A data dir on a 3 MiB tmpfs: the three-layer image does not fit."""
    small = tmp_path / "small"
    small.mkdir()
    ik.sh("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", small)
    try:
        s = Store(dict(store.env, MINICONTAINER_DATA=str(small)), str(small), tmp_path)
        tiny = tmp_path / "tiny.tar"
        with tarfile.open(tiny, "w") as t:
            ti = tarfile.TarInfo("hello")
            ti.size = 3
            t.addfile(ti, io.BytesIO(b"hi\n"))
        s.ok("import", str(tiny), "mc-test/small:1")
        before = s.listing()
        s.fails("load", "-i", images["three-oci"], contains=["no space left on device", "three-oci.tar"])
        assert s.listing() == before
        assert_consistent(s)
    finally:
        ik.sh("umount", small)


# MARK: - SIGKILL and concurrency

@pytest.fixture(scope="module")
def big_archive(images):
    """An archive big enough to kill a load in the middle: busybox plus two
    layers of 8000 small files and 40 MB of incompressible data."""
    root = images["root"]
    path = os.path.join(root, "big.tar")
    lay = images["layout"]
    lay.copy_tag("base", "big")
    lay.add_tar("big", [{"name": f"many/{i // 100}/{i}.txt", "data": b"%d\n" % i} for i in range(8000)])
    lay.add_tar("big", [{"name": f"rand/{i}.bin", "data": os.urandom(1 << 20)} for i in range(40)])
    ik.to_oci_archive(lay, "big", path, "docker.io/mc-test/big:1")
    return path


@pytest.fixture(scope="module")
def load_seconds(big_archive, tmp_path_factory):
    """How long a whole load of the big archive takes here."""
    data = str(tmp_path_factory.mktemp("timing"))
    t = time.monotonic()
    run_mc("load", "-i", big_archive, env=dict(os.environ, MINICONTAINER_DATA=data), check=True, timeout=300)
    took = time.monotonic() - t
    shutil.rmtree(data)
    return took


@pytest.mark.parametrize("fraction", [0.03, 0.15, 0.3, 0.5, 0.7, 0.85, 0.97])
def test_sigkill_during_load(store, images, big_archive, load_seconds, fraction):
    """Killed at points through the load (reading the archive, unpacking,
    committing): the next command finds a consistent store and sweeps."""
    store.ok("load", "-i", images["base-oci"])
    p = subprocess.Popen([BIN, "load", "-i", big_archive], env=store.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(load_seconds * fraction)
    p.send_signal(signal.SIGKILL)
    p.wait()
    # The next command sweeps what the killed one left; the store is whole.
    store.ok("images")
    assert os.listdir(os.path.join(store.images, "tmp")) == []
    for l in store.layer_dirs():
        assert os.path.exists(os.path.join(store.images, "layers", l, "layer.json"))
    store.ok("load", "-i", big_archive)
    assert store.inspect("mc-test/big:1")["Id"]
    assert_consistent(store)


def test_concurrent_loads_of_one_image(store, big_archive):
    procs = [subprocess.Popen([BIN, "load", "-i", big_archive], env=store.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out == "Loaded image: mc-test/big:1\n", err
    assert len(store.layer_dirs()) == 3
    assert len(store.index()["manifests"]) == 1
    assert_consistent(store)
