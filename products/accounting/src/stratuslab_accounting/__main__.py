"""Command line: python3 -m stratuslab_accounting --config FILE COMMAND."""

import argparse
import json
import logging
import signal
import sys
import threading
import time

from .config import Config, ConfigError, read_secret
from .store import StoreError, open_store

LOG = logging.getLogger("stratuslab_accounting")


def _parser():
    p = argparse.ArgumentParser(prog="python3 -m stratuslab_accounting",
                                description="StratusLab accounting: collector, API, APEL export")
    p.add_argument("--config", required=True, help="INI configuration file")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the pending schema migrations")
    c = sub.add_parser("collect", help="run the collector")
    c.add_argument("--once", action="store_true", help="one pass, then exit (1 on failure)")
    sub.add_parser("serve", help="run the HTTPS API")
    a = sub.add_parser("apel-export", help="write APEL cloud records for a window")
    a.add_argument("--from", dest="start", required=True, help="ISO 8601 start")
    a.add_argument("--to", dest="end", required=True, help="ISO 8601 end (exclusive)")
    a.add_argument("--out", default=None, help="outgoing directory (default: [apel] out_dir)")
    u = sub.add_parser("usage", help="print usage as JSON")
    u.add_argument("--from", dest="start", required=True)
    u.add_argument("--to", dest="end", required=True)
    u.add_argument("--user", default=None)
    u.add_argument("--group", default=None)
    return p


def _on_term(stop):
    def handler(signum, frame):
        LOG.info("signal %d: stopping", signum)
        stop()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _migrate_with_retry(store, stop_event=None, retry_max=60):
    """Services wait for the database (it may start after them)."""
    delay = 1.0
    while True:
        try:
            return store.migrate()
        except StoreError as exc:
            if stop_event is None:
                raise
            LOG.warning("store not ready, retrying in %.0f s: %s", delay, exc)
            if stop_event.wait(delay):
                raise
            delay = min(delay * 2, retry_max)


def cmd_migrate(cfg, args):
    store = open_store(cfg)
    applied = store.migrate()
    print("schema version %d (applied now: %s)" % (store.schema_version(), applied or "none"))
    return 0


def cmd_collect(cfg, args):
    from .collector import CollectError, Collector
    from .oned import OnedClient
    session = read_secret(cfg.require("oned", "auth_file"), "[oned] auth_file")
    if ":" not in session:
        raise ConfigError("[oned] auth_file: expected user:password")
    client = OnedClient(cfg.get("oned", "endpoint"), session, cfg.getfloat("oned", "timeout"))
    store = open_store(cfg)
    collector = Collector(client, store, cfg.getint("collector", "interval", 1),
                          cfg.getint("collector", "overlap", 0), cfg.getint("collector", "retry_max", 1))
    if args.once:
        store.migrate()
        try:
            n = collector.collect_once()
        except CollectError as exc:
            LOG.error("%s", exc)
            return 1
        print("collected %d records" % n)
        return 0
    _on_term(collector.stop)
    try:
        _migrate_with_retry(store, collector.stop_event, cfg.getint("collector", "retry_max", 1))
    except StoreError:
        return 0  # stopped while waiting
    LOG.info("collector started: %s every %d s, overlap %d s", cfg.get("oned", "endpoint"),
             collector.interval, collector.overlap)
    collector.run()
    store.close()
    return 0


def cmd_serve(cfg, args):
    from .api import make_server
    from .auth import LdapAuthenticator
    store = open_store(cfg)
    authenticator = LdapAuthenticator.from_config(cfg)
    server = make_server(cfg, store, authenticator)
    stop_event = threading.Event()

    def stop():
        stop_event.set()
        threading.Thread(target=server.shutdown, daemon=True).start()
    _on_term(stop)
    try:
        _migrate_with_retry(store, stop_event)
    except StoreError:
        return 0
    LOG.info("API listening on https://%s:%d", *server.server_address[:2])
    server.serve_forever()
    server.server_close()
    store.close()
    return 0


def _window(args):
    """(start, end): the epoch seconds of --from and --to; a bad time is a ConfigError."""
    from .timeutil import BadTime, parse_iso
    try:
        return parse_iso(args.start, "--from"), parse_iso(args.end, "--to")
    except BadTime as exc:
        raise ConfigError(str(exc)) from None


def _store_until(cfg, end):
    """(the store, migrated; the end of its open records: the last successful
    collection where it is before ``end``, else ``end``)."""
    from .collector import STATE_LAST_SUCCESS
    store = open_store(cfg)
    store.migrate()
    last = store.get_state(STATE_LAST_SUCCESS)
    return store, min(end, int(last)) if last else end


def cmd_apel_export(cfg, args):
    from .apel import export
    start, end = _window(args)
    if start >= end:
        raise ConfigError("--from must be before --to")
    site = cfg.require("apel", "site")
    store, open_end = _store_until(cfg, end)
    path, count = export(store, start, end, site, cfg.get("apel", "cloud_type"),
                         cfg.get("apel", "cloud_compute_service") or site,
                         args.out or cfg.require("apel", "out_dir"), open_end)
    print("%d records%s" % (count, " written to %s" % path if path else ", nothing written"))
    return 0


def cmd_usage(cfg, args):
    from .timeutil import iso
    start, end = _window(args)
    store, open_end = _store_until(cfg, end)
    rows, totals = store.usage(start, end, open_end, args.user, args.group)
    json.dump({"from": iso(start), "to": iso(end), "rows": rows, "totals": totals}, sys.stdout, indent=1)
    print()
    return 0


COMMANDS = {"migrate": cmd_migrate, "collect": cmd_collect, "serve": cmd_serve,
            "apel-export": cmd_apel_export, "usage": cmd_usage}


def main(argv=None):
    args = _parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.Formatter.converter = time.gmtime
    try:
        cfg = Config.load(args.config)
        return COMMANDS[args.command](cfg, args)
    except ConfigError as exc:
        LOG.error("configuration: %s", exc)
        return 2
    except StoreError as exc:
        LOG.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
