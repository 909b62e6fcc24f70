#!/usr/bin/python3
# Starts a playbook on ignition-toolkitd and prints its progress live, the
# race-free way: the match on the whole /org/ignition/Toolkit namespace is
# added before StartExecution is called, so no transition can be missed.
# (ignitionctl run does the same in C.)
#
# usage: follow.py --address ADDR PLAYBOOK [name=value ...]
import argparse
import sys
import time

from gi.repository import Gio, GLib

PRIORITY = {3: "error", 4: "warning", 5: "notice", 6: "info", 7: "debug"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("playbook")
    ap.add_argument("params", nargs="*")
    args = ap.parse_args()

    bus = Gio.DBusConnection.new_for_address_sync(
        args.address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                  "org.freedesktop.DBus", "AddMatch",
                  GLib.Variant("(s)", ("type='signal',sender='org.ignition.Toolkit',"
                                       "path_namespace='/org/ignition/Toolkit'",)),
                  None, Gio.DBusCallFlags.NONE, -1, None)

    loop = GLib.MainLoop()
    state = {"path": None, "early": [], "result": None, "started": {}}
    t0 = time.monotonic()

    def show(path, member, a):
        stamp = "%6.2fs" % (time.monotonic() - t0)
        if member == "StatusChanged":
            print(f"{stamp}  run {a[1]} -> {a[0]}")
        elif member == "StepChanged":
            index, step, status, message = a
            if status == "running":
                state["started"][step] = time.monotonic()
            took = ""
            if status in ("completed", "failed", "skipped", "cancelled") and step in state["started"]:
                took = " (%.2fs)" % (time.monotonic() - state["started"][step])
            if status != "pending":
                extra = f": {message}" if message and status == "failed" else ""
                print(f"{stamp}  step {index + 1} {step}: {status}{took}{extra}")
        elif member == "Log":
            print(f"{stamp}      {PRIORITY.get(a[1], a[1])}: {a[3]}")
        elif member == "Finished":
            state["result"] = (a[0], a[1])
            loop.quit()

    def on_signal(conn, sender, path, iface, member, params):
        if iface != "org.ignition.Toolkit.Execution":
            return
        a = params.unpack()
        if state["path"] is None:
            state["early"].append((path, member, a))
        elif path == state["path"]:
            show(path, member, a)

    bus.signal_subscribe("org.ignition.Toolkit", None, None, None, None,
                         Gio.DBusSignalFlags.NO_MATCH_RULE, on_signal)

    params = {}
    for p in args.params:
        name, _, value = p.partition("=")
        params[name] = GLib.Variant("s", value)
    reply = bus.call_sync("org.ignition.Toolkit", "/org/ignition/Toolkit",
                          "org.ignition.Toolkit.Manager", "StartExecution",
                          GLib.Variant("(sa{sv}a{sv})", (args.playbook, params, {})),
                          GLib.VariantType("(o)"), Gio.DBusCallFlags.NONE, -1, None)
    state["path"] = reply.unpack()[0]
    print(f"Started {args.playbook} as {state['path']}")
    for path, member, a in state["early"]:
        if path == state["path"]:
            show(path, member, a)
    if state["result"] is None:
        loop.run()
    status, error = state["result"]
    print(f"Finished: {status}" + (f" ({error})" if error else ""))
    return 0 if status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
