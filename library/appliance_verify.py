#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: appliance_verify
short_description: Fetch a StratusLab appliance, verify its signed manifest, and place the verified image
description:
  - Fetches an appliance manifest (C(<name>-<version>.img.manifest.xml)) from an appliance repository,
    checks it is a valid format-2 manifest with an enveloped W3C XML Signature by one of the site's trusted
    signers, then fetches the image beside it and checks its size, SHA-256 and SHA-512 against the manifest.
  - The signature is verified by C(xmlsec1 --verify) on the host that runs the module, with each trusted
    signer's certificate as C(--trusted-pem), only the signer's certificate in C(KeyInfo/X509Data) as the
    key, and only the whole-document reference C(URI=""). Before that, the module reads the signer's
    certificate itself so that a refusal names the signer and the reason.
  - Only a verified image is placed at O(dest). Anything else is refused with a message naming what was
    wrong (unsigned, untrusted signer, manifest changed after signing, image size or checksum); the module
    then fails, writes nothing and leaves no partial file. An existing O(dest) is never changed by a refused
    appliance.
  - When O(dest) already holds the image the manifest describes, the image is not fetched again; the
    manifest is still fetched and verified on every run.
  - The image is stored as published (compressed). OpenNebula's image datastore drivers decompress gzip
    images when they register them.
version_added: "1.0.0"
author: StratusLab site deployer contributors
options:
  manifest_url:
    description:
      - URL of the manifest, V(http://) or V(https://).
      - Plain V(http://) is safe for reading, and lets a site cache keep the image. Integrity comes from
        the signature, not from the transport.
    type: str
    required: true
  image_url:
    description:
      - URL of the image. By default the file the manifest names, in the manifest's directory.
    type: str
  dest:
    description:
      - Path where the verified image is placed. Its directory must exist.
    type: path
    required: true
  trusted_signers:
    description:
      - The site's trusted signers, PEM text. Each item holds one or more X.509 certificates.
      - A signer is trusted when its certificate is one of them and self-signed, or was issued directly by
        one of them that is a CA (basicConstraints CA:TRUE); both within their validity periods (the rules
        of C(xmlsec1 --trusted-pem)). A certificate issued by a CA cannot be trusted on its own; list its CA.
      - An empty list refuses every appliance.
    type: list
    elements: str
    required: true
  proxy:
    description:
      - HTTP proxy for both downloads, for example the site cache V(http://cache.example.org:3128).
      - When not given, the site image cache named in O(proxy_file) on the host that runs the module, if that
        file exists; V("") downloads directly. The C(http_proxy) of the environment is never used.
    type: str
  proxy_file:
    description:
      - The site's image cache environment file, which the squid role's C(client) entry point writes on the
        hosts that download images; its C(STRATUSLAB_IMAGE_CACHE=<url>) line is the proxy when O(proxy) is
        not given. A missing file means no cache.
    type: path
    default: /etc/default/stratuslab-image-cache
  ca_path:
    description:
      - CA bundle that checks the repository's TLS certificate for V(https://) URLs, for example the site CA.
    type: path
  validate_certs:
    description:
      - Check the repository's TLS certificate. V(false) is for test sites only; the manifest's signature
        is checked either way.
    type: bool
    default: true
  timeout:
    description:
      - Timeout in seconds of each network operation.
    type: int
    default: 60
  mode:
    description:
      - Permissions of O(dest), as an octal string.
    type: str
    default: "0644"
requirements:
  - C(xmlsec1) on the host that runs the module (Debian package C(xmlsec1)).
  - Python C(cryptography) 38 or later on the host that runs the module (C(python3-cryptography) on Debian 12).
notes:
  - Supports check mode; the manifest is fetched and verified, the image is not fetched and nothing is written.
  - xmlsec1 reads the manifest and the trusted certificates from a private temporary directory that is
    removed before the module returns, in check mode too.
  - Supports diff mode.
  - The manifest format and the trust rules are described in docs/appliance-repository.md.
seealso:
  - name: Appliance repository
    description: Manifest format, signing, publishing with tools/sl-publish.
    link: https://github.com/stratuslab
"""

EXAMPLES = r"""
- name: Fetch and verify ttylinux through the site cache
  appliance_verify:
    manifest_url: http://appliances.example.org/images/base/ttylinux/ttylinux-9.7.img.manifest.xml
    dest: /var/lib/one/appliances/ttylinux-9.7.img.gz
    trusted_signers:
      - "{{ lookup('ansible.builtin.file', 'files/site-signers-ca.pem') }}"
    proxy: http://cache.example.org:3128

- name: Verify an appliance over TLS, checking the server against the site CA
  appliance_verify:
    manifest_url: https://appliances.example.org/images/base/ttylinux/ttylinux-9.7.img.manifest.xml
    dest: /srv/images/ttylinux-9.7.img.gz
    trusted_signers: "{{ site_repository_trusted_signers }}"
    ca_path: /usr/local/share/ca-certificates/site-ca.crt
  register: ttylinux
"""

RETURN = r"""
dest:
  description: Path of the verified image.
  returned: success
  type: str
  sample: /var/lib/one/appliances/ttylinux-9.7.img.gz
manifest_url:
  description: URL the manifest was read from.
  returned: always
  type: str
image_url:
  description: URL the image was (or would be) read from.
  returned: success
  type: str
proxy:
  description: The proxy both downloads went through (O(proxy), or the site cache of O(proxy_file)); empty for none.
  returned: success
  type: str
  sample: http://cache.example.org:3128
manifest:
  description: The verified manifest's fields.
  returned: success
  type: dict
  sample:
    name: ttylinux
    type: base
    version: "9.7"
    arch: x86_64
    os: ttylinux
    osversion: "9.7"
    compression: gz
    created: "2026-11-25T12:00:00Z"
    user: alice
    description: null
    size: 12345678
    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    sha512: ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db27ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff
    image_path: images/base/ttylinux/ttylinux-9.7.img.gz
    manifest_path: images/base/ttylinux/ttylinux-9.7.img.manifest.xml
    signed: true
signer:
  description: Who signed the manifest and why the site trusts them.
  returned: success
  type: dict
  sample:
    subject: CN=Alice Publisher,O=Example
    issuer: CN=Example Signers CA,O=Example
    sha256_fingerprint: 3f1c0d8e5a4b...
    trusted_by: issued by CN=Example Signers CA,O=Example
reason:
  description:
    - Why an appliance was refused, when it was; one of V(download), V(format), V(signature), V(trust),
      V(content).
  returned: failure
  type: str
"""

import hashlib
import os
import ssl
import tempfile
import traceback
import urllib.error
import urllib.parse
import urllib.request

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils import stratuslab_manifest as sm


class Refused(Exception):
    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def site_proxy(params):
    """O(proxy) when given, else STRATUSLAB_IMAGE_CACHE of the site's image cache file, else none."""
    if params["proxy"] is not None:
        return params["proxy"]
    try:
        with open(params["proxy_file"], encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                if key == "STRATUSLAB_IMAGE_CACHE":
                    return value.strip().strip("'\"")
    except FileNotFoundError:
        pass
    return ""


def _opener(params):
    context = ssl.create_default_context(cafile=params["ca_path"])
    if not params["validate_certs"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    proxy = site_proxy(params)
    proxies = {"http": proxy, "https": proxy} if proxy else {}
    return urllib.request.build_opener(urllib.request.ProxyHandler(proxies),
                                       urllib.request.HTTPSHandler(context=context))


def _open(opener, url, timeout, fresh=False):
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise Refused("download", "%s: only http:// and https:// URLs are fetched" % url)
    try:
        # A manifest is always revalidated by a cache on the way; an image is
        # immutable once published (a new version is a new file).
        headers = {"Cache-Control": "no-cache"} if fresh else {}
        return opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise Refused("download", "%s answered HTTP %d %s" % (url, exc.code, exc.reason)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise Refused("download", "cannot fetch %s: %s" % (url, getattr(exc, "reason", exc))) from None


def fetch_manifest(opener, params, xmlsec1):
    url = params["manifest_url"]
    with _open(opener, url, params["timeout"], fresh=True) as resp:
        data = resp.read(sm.MAX_MANIFEST_BYTES + 1)
    try:
        manifest = sm.parse(data)
    except sm.SignatureError as exc:
        raise Refused("signature", "%s: %s" % (url, exc)) from None
    except sm.ManifestError as exc:
        raise Refused("format", "%s is not a valid appliance manifest: %s" % (url, exc)) from None
    try:
        trusted = sm.load_trusted(params["trusted_signers"])
        signer = sm.check_signer(manifest, trusted)
        sm.xmlsec1_verify(data, trusted, xmlsec1=xmlsec1, manifest_file=manifest.manifest_file)
    except sm.TrustError as exc:
        raise Refused("trust", "%s: %s" % (url, exc)) from None
    except sm.ManifestError as exc:
        raise Refused("signature", "%s: %s" % (url, exc)) from None
    return manifest, signer


def image_url_for(params, manifest):
    if params["image_url"]:
        return params["image_url"]
    return urllib.parse.urljoin(params["manifest_url"], manifest.image_file)


def dest_matches(path, manifest):
    if not os.path.isfile(path) or os.path.getsize(path) != manifest.size:
        return False
    size, sha256, sha512 = sm.digest_file(path)
    return (size, sha256, sha512) == (manifest.size, manifest.sha256, manifest.sha512)


def download_verified(opener, url, manifest, dest, timeout, mode):
    """Stream url into a hidden temporary file beside dest, verify, then rename it onto dest."""
    directory = os.path.dirname(os.path.abspath(dest)) or "."
    if not os.path.isdir(directory):
        raise Refused("download", "the directory of dest, %s, does not exist" % directory)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(dest) + ".")
    try:
        sha256 = hashlib.sha256()
        sha512 = hashlib.sha512()
        size = 0
        with os.fdopen(handle, "wb") as out, _open(opener, url, timeout) as resp:
            while True:
                chunk = resp.read(sm.CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > manifest.size:
                    raise Refused("content", "%s is larger than the %d bytes its manifest says"
                                  % (url, manifest.size))
                sha256.update(chunk)
                sha512.update(chunk)
                out.write(chunk)
        try:
            sm.check_content(manifest, size, sha256.hexdigest(), sha512.hexdigest())
        except sm.ContentError as exc:
            raise Refused("content", "%s: %s" % (url, exc)) from None
        os.chmod(tmp, int(mode, 8))
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run(module, xmlsec1):
    params = module.params
    opener = _opener(params)
    manifest, signer = fetch_manifest(opener, params, xmlsec1)
    dest = params["dest"]
    image_url = image_url_for(params, manifest)
    before_sha = sm.digest_file(dest)[1] if os.path.isfile(dest) else None
    matches = dest_matches(dest, manifest)
    changed = not matches
    if changed and not module.check_mode:
        download_verified(opener, image_url, manifest, dest, params["timeout"], params["mode"])
    mode_changed = False
    if not changed and not module.check_mode and os.path.isfile(dest):
        current = "%04o" % (os.stat(dest).st_mode & 0o7777)
        if current != "%04o" % int(params["mode"], 8):
            os.chmod(dest, int(params["mode"], 8))
            mode_changed = True
    return dict(
        changed=changed or mode_changed,
        dest=dest,
        manifest_url=params["manifest_url"],
        image_url=image_url,
        proxy=site_proxy(params),
        manifest=manifest.to_dict(),
        signer=signer.to_dict(),
        diff=dict(
            before={"path": dest, "sha256": before_sha},
            after={"path": dest, "sha256": manifest.sha256},
        ),
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            manifest_url=dict(type="str", required=True),
            image_url=dict(type="str"),
            dest=dict(type="path", required=True),
            trusted_signers=dict(type="list", elements="str", required=True),
            proxy=dict(type="str"),
            proxy_file=dict(type="path", default="/etc/default/stratuslab-image-cache"),
            ca_path=dict(type="path"),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="int", default=60),
            mode=dict(type="str", default="0644"),
        ),
        supports_check_mode=True,
    )
    if not sm.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=str(sm.CRYPTOGRAPHY_IMPORT_ERROR))
    xmlsec1 = module.get_bin_path("xmlsec1")
    if xmlsec1 is None:
        module.fail_json(msg="xmlsec1 is not installed on this host (Debian package xmlsec1): it verifies the "
                             "manifests' XML signatures", reason="signature",
                         manifest_url=module.params["manifest_url"])
    try:
        int(module.params["mode"], 8)
    except ValueError:
        module.fail_json(msg="mode must be an octal string such as '0644', got %r" % module.params["mode"])
    try:
        result = run(module, xmlsec1)
    except Refused as exc:
        module.fail_json(msg="appliance refused: %s" % exc, reason=exc.reason,
                         manifest_url=module.params["manifest_url"])
    except OSError as exc:
        module.fail_json(msg="appliance not placed: %s" % exc, reason="download",
                         manifest_url=module.params["manifest_url"], exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
