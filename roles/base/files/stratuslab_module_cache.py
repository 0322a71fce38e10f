# StratusLab site deployer: a compiled-code cache for Ansible's module runs.
# Installed by the base role (tasks/module_cache.yml) into the site-packages
# directory of the host's Python, and loaded at each Python start by
# stratuslab_module_cache.pth next to it. base_module_cache: false removes
# both files and the cache.
#
# Why: every Ansible task that runs a module sends the module and its
# module_utils as a zip, and the host's Python imports them from that zip.
# Python's zipimport never keeps compiled code, and in Python 3.11 it even
# compiles each module twice (once to find it, once to run it), so every
# module run compiles ansible.module_utils.basic and its 50-odd imports from
# source: about 0.12 of the 0.17 CPU seconds a module run costs a Debian 12
# host, whatever the module does. This finder compiles each source once and
# keeps the code objects in a directory only root can read and write, keyed by
# the SHA-256 of the source (and the Python bytecode magic number), so a
# changed module never meets stale code. Measured on the demo site:
# bench/README.md.
#
# Scope and safety:
# - Only module names that start with "ansible" (ansible.*,
#   ansible_collections.*) found in a zip first on the import path, which is
#   where Ansible's payload puts them; everything else goes to Python's own
#   finders and is compiled as before (once instead of twice when it comes
#   from the same zip). The cost for any other Python process on the host is
#   one lstat() at start and one string test per import.
# - Only when the process runs as the cache's owner (root) and the cache
#   directory is a directory owned by root that nobody else may use (mode
#   0700): the cached code runs as root, so no other user may be able to
#   write it. Other users' module runs (become_user) compile as before.
# - Every failure falls back to Python's own zip import, which compiles the
#   source as if this file were not there: a corrupt entry, a full disk, a
#   Python whose zipimport internals differ.
# - Code read from the cache gets the file names of the current payload, so
#   tracebacks name the files Ansible sent this time.
# - systemd-tmpfiles removes entries unused for 30 days
#   (/etc/tmpfiles.d/stratuslab-module-cache.conf): each ansible-core
#   release adds its own entries.

import sys

__all__ = ["install"]


def install(cache_dir, owner_uid=0):
    """Put the finder first on sys.meta_path if this process may use cache_dir.

    Returns True when the finder is (already) installed, False otherwise.
    """
    try:
        import os

        if os.geteuid() != owner_uid:
            return False
        st = os.lstat(cache_dir)
        if (st.st_mode & 0o170000) != 0o040000 or st.st_uid != owner_uid or st.st_mode & 0o077:
            return False
        for finder in sys.meta_path:
            if isinstance(finder, _CodeCacheFinder):
                return True
        sys.meta_path.insert(0, _CodeCacheFinder(cache_dir))
        return True
    except Exception:
        return False


class _CodeCacheFinder:
    """A meta path finder for Ansible's payload modules, with cached code."""

    def __init__(self, cache_dir):
        self.cache_dir = cache_dir
        self._loader_class = None

    def invalidate_caches(self):
        pass

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("ansible"):
            return None
        try:
            return self._find_spec(fullname, path)
        except Exception:
            return None

    def _find_spec(self, fullname, path):
        import importlib.machinery
        import zipimport

        loader_class = self._loader_class or self._make_loader_class()
        for entry in sys.path if path is None else path:
            importer = sys.path_importer_cache.get(entry, self)
            if importer is self:
                # No finder yet for this entry: make one only for a zip;
                # for anything else let Python's own finders decide.
                try:
                    importer = zipimport.zipimporter(entry)
                except Exception:
                    return None
                sys.path_importer_cache[entry] = importer
            if importer is None:
                continue
            if not isinstance(importer, zipimport.zipimporter):
                # A directory (or another finder) comes first: Python decides.
                return None
            is_package = zipimport._get_module_info(importer, fullname)
            if is_package is None:
                continue
            if type(importer) is zipimport.zipimporter:
                importer.__class__ = loader_class
            origin, location = _names(importer, fullname, is_package)
            spec = importlib.machinery.ModuleSpec(fullname, importer, origin=origin, is_package=is_package)
            spec.has_location = True
            if is_package:
                spec.submodule_search_locations = [location]
            return spec
        return None

    def _make_loader_class(self):
        import hashlib
        import importlib.util
        import marshal
        import os
        import zipimport

        cache_dir = self.cache_dir
        tag = importlib.util.MAGIC_NUMBER + bytes([sys.flags.optimize])

        class CachingZipImporter(zipimport.zipimporter):
            """zipimporter that keeps compiled code and never compiles to find a name."""

            def get_filename(self, fullname):
                return _names(self, fullname, zipimport._get_module_info(self, fullname))[0]

            def get_code(self, fullname):
                if not fullname.startswith("ansible"):
                    return super().get_code(fullname)
                try:
                    is_package = zipimport._get_module_info(self, fullname)
                    source = self.get_source(fullname)
                except Exception:
                    source = None
                if source is None:
                    return super().get_code(fullname)
                filename = _names(self, fullname, is_package)[0]
                entry = os.path.join(cache_dir, hashlib.sha256(tag + source.encode("utf-8")).hexdigest())
                try:
                    with open(entry, "rb") as stream:
                        return _renamed(marshal.load(stream), filename)
                except Exception:
                    pass
                code = compile(source, filename, "exec", dont_inherit=True)
                partial = "%s.%d.tmp" % (entry, os.getpid())
                try:
                    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as stream:
                        marshal.dump(code, stream)
                    os.replace(partial, entry)
                except Exception:
                    try:
                        os.unlink(partial)
                    except OSError:
                        pass
                return code

        self._loader_class = CachingZipImporter
        return CachingZipImporter


def _names(importer, fullname, is_package):
    """The file name zipimport gives a module, and a package's location."""
    location = importer.archive + "/" + importer.prefix + fullname.rpartition(".")[2]
    return (location + "/__init__.py" if is_package else location + ".py"), location


def _renamed(code, filename):
    """The code object (and those nested in it) with co_filename set to filename."""
    consts = tuple(_renamed(c, filename) if type(c) is type(code) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)
