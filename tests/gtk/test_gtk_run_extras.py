# SPDX-License-Identifier: LGPL-2.1-or-later
"""ignition-toolkit-gtk's run window beyond the controls: the live view pane
of a run without a browser shows the daemon's message and is open only while
shown, the running step's duration ticks (and stops ticking), and the run's
recorded files are listed, saved byte for byte, live and from history.
Exits 77 without Xvfb or the app; the file tests skip without the gateway
simulator."""

import base64
import json
import os
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gtk_harness import (  # noqa: E402
    GLib, GtkAppTestCase, playbook, skip_reason, sleep_step)
from gi.repository import Gio  # noqa: E402
from test_gtk import FAKE_XML  # noqa: E402
from test_artifacts import TOKEN, start_sim, stop_sim  # noqa: E402  (tests/integration)
from itk_harness import MANAGER_PATH, step  # noqa: E402


class TestGtkRunExtras(GtkAppTestCase):
    # Finished runs leave the bus at once: windows go on from history.
    retention = 1

    def open_run(self, path):
        mark = self.mark()
        self.hook('OpenRun', path)
        self.hook_signal('RunViewOpened', lambda a: a[0] == path, mark, 'the run window')
        return mark

    def test_no_browser_message_and_ticking_duration(self):
        path = self.start(playbook(sleep_step('wait', 60)))
        self.client.wait_step(path, 'wait', 'running')
        mark = self.open_run(path)

        # The live view pane is shown first: it opened the view and shows
        # the daemon's own words for a run without a page.
        shown = self.hook_signal('LiveStatusShown',
                                 lambda a: a[0] == path and a[1] == 'no-browser', mark,
                                 'the live view to say there is no browser')
        self.assertIn('no browser', shown.args[2])
        view = self.hook('DescribeRun', path)
        self.assertEqual(view['pane'], 'live')
        self.assertIs(view['live']['watching'], True)
        self.assertEqual(view['live']['message'], shown.args[2])
        self.assertEqual(view['live']['frames'], 0)

        # The running step's duration ticks: two different texts, one a second.
        first = self.hook_signal('DurationTicked', lambda a: a[0] == path, mark,
                                 'the duration to tick')
        second = self.hook_signal('DurationTicked',
                                  lambda a: a[0] == path and a[1] != first.args[1],
                                  first.seq + 1, 'the duration to change')
        self.assertTrue(second.args[1].endswith(' s'), second.args[1])
        view = self.hook('DescribeRun', path)
        self.assertIs(view['ticking'], True)
        self.assertNotEqual(view['running-duration'], '')

        # Only while shown: another pane closes the view, showing it again reopens it.
        self.hook('ShowRunPane', path, 'files')
        view = self.hook('DescribeRun', path)
        self.assertEqual(view['pane'], 'files')
        self.assertIs(view['live']['watching'], False)
        mark = self.mark()
        self.hook('ShowRunPane', path, 'live')
        self.hook_signal('LiveStatusShown', lambda a: a[0] == path and a[1] == 'no-browser',
                         mark, 'the live view to be opened again')

        # Paused: the pane says so.
        mark = self.mark()
        self.hook('Press', path, 'pause', signature='(ss)')
        view = self.wait_shown(path, 'paused', mark)
        self.assertIs(view['live']['paused'], True)

        # The run's end closes the view and stops the timer.
        mark = self.mark()
        self.hook('Press', path, 'cancel', signature='(ss)')
        self.assertEqual(self.client.wait_finished(path).args[0], 'cancelled')
        self.hook_signal('LiveStatusShown', lambda a: a[0] == path and a[1] == 'closed', mark,
                         'the live view to say the run ended')
        view = self.client.wait_for(
            lambda: (lambda v: v if not v['ticking'] and v['status'] == 'cancelled' else None)(
                self.hook('DescribeRun', path)), what='the timer to stop')
        self.assertEqual(view['running-duration'], '')
        self.assertIs(view['live']['paused'], False)
        self.assertIs(view['live']['watching'], False)

    def test_close_while_ticking_and_watching(self):
        # Closing the window while its step ticks and its live view is open
        # frees both (ASan and the log check at the end would see otherwise).
        path = self.start(playbook(sleep_step('wait', 60)))
        self.client.wait_step(path, 'wait', 'running')
        mark = self.open_run(path)
        self.hook_signal('LiveStatusShown', lambda a: a[0] == path and a[1] == 'no-browser',
                         mark, 'the live view to be open')
        self.hook_signal('DurationTicked', lambda a: a[0] == path, mark, 'the duration to tick')
        self.hook('CloseRun', path)
        with self.assertRaises(Exception):
            self.hook('DescribeRun', path)
        # The app goes on: the same run opens again in a new window.
        mark = self.open_run(path)
        self.hook_signal('LiveStatusShown', lambda a: a[0] == path and a[1] == 'no-browser',
                         mark, 'the live view to be open again')
        self.call(path, 'Cancel')
        self.client.wait_finished(path)

    def test_files_listed_saved_and_from_history(self):
        try:
            sim, url = start_sim(self.workdir)
        except unittest.SkipTest as e:
            self.skipTest(str(e))
        self.addCleanup(stop_sim, sim)
        source = playbook(
            sleep_step('first', 60),
            step('backup', 'gateway.backup', {'gateway_url': url, 'token': TOKEN,
                                              'path': 'site.gwbk'}),
            sleep_step('after', 60))
        path = self.start(source)
        self.client.wait_step(path, 'first', 'running')
        mark = self.open_run(path)
        shown = self.hook_signal('ArtifactsShown', lambda a: a[0] == path, mark,
                                 'the Files pane to list the run\'s files')
        self.assertEqual(shown.args[1], 0)

        # A step records a file while the window is open: the list follows.
        mark = self.mark()
        self.call(path, 'Skip')
        self.client.wait_step(path, 'after', 'running', timeout=60)
        self.hook_signal('ArtifactsShown', lambda a: a[0] == path and a[1] == 1, mark,
                         'the Files pane to list the backup')
        listed = self.call(path, 'ListArtifacts')
        view = self.hook('DescribeRun', path)
        self.assertEqual([tuple(a) for a in view['artifacts']],
                         [(a['name'], a['step'], a['size'], a['content-type']) for a in listed])
        self.assertEqual(view['artifacts'][0][:2], ('site.gwbk', 'backup'))

        original = os.path.join(self.daemon.state_dir, 'runs', path.rsplit('/', 1)[1],
                                'site.gwbk')
        with open(original, 'rb') as f:
            data = f.read()
        self.assertGreater(len(data), 0)

        def save(key, target):
            mark = self.mark()
            self.hook('SaveArtifact', key, 'site.gwbk', target, signature='(sss)')
            return self.hook_signal('ArtifactSaved', lambda a: a[0] == 'site.gwbk', mark,
                                    'the file to be saved')

        target = os.path.join(self.tmp, 'saved-live.gwbk')
        saved = save(path, target)
        self.assertEqual(saved.args[2], '')
        with open(target, 'rb') as f:
            self.assertEqual(f.read(), data)
        # A folder that does not exist: the window says why.
        failed = save(path, os.path.join(self.tmp, 'no-such-dir', 'x.gwbk'))
        self.assertIn('Could not save site.gwbk', failed.args[2])
        with self.assertRaises(Exception):
            self.hook('SaveArtifact', path, 'not-listed.gwbk', target, signature='(sss)')
        # Only images are previewed.
        with self.assertRaises(Exception):
            self.hook('PreviewArtifact', path, 'site.gwbk')

        # The run ends and leaves the bus (retention): the window it was
        # followed in still saves its file, from history.
        run_id = self.client.get_prop(path, 'Id')
        self.call(path, 'Cancel')
        self.client.wait_finished(path)
        self.client.wait_signal(MANAGER_PATH, 'InterfacesRemoved', lambda a: a[0] == path,
                                what='the run to leave the bus')
        target = os.path.join(self.tmp, 'saved-after.gwbk')
        self.assertEqual(save(path, target).args[2], '')
        with open(target, 'rb') as f:
            self.assertEqual(f.read(), data)

        # The finished run from history lists and saves the same file.
        mark = self.mark()
        self.hook('OpenRecord', run_id)
        self.hook_signal('ArtifactsShown', lambda a: a[0] == run_id and a[1] == 1, mark,
                         'the history window to list the backup')
        record = self.hook('DescribeRun', run_id)
        self.assertNotIn('live', record)
        self.assertEqual(record['artifacts'], view['artifacts'])
        target = os.path.join(self.tmp, 'saved-history.gwbk')
        self.assertEqual(save(run_id, target).args[2], '')
        with open(target, 'rb') as f:
            self.assertEqual(f.read(), data)



# A 32x24 JPEG (gdk-pixbuf, quality 50).
SMALL_JPEG = base64.b64decode(
    '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERX'
    'RTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj'
    'Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAYACADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAA'
    'AAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAk'
    'M2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKT'
    'lJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QA'
    'HwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdh'
    'cRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hp'
    'anN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk'
    '5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwChRRRXuHnhRRRQAUUUUAFFFFAH/9k=')

FAKE_RUN = '/org/ignition/Toolkit/execution/0123456789abcdef0123456789abcdef'
FAKE_RUN_XML = '''<node>
  <interface name="org.ignition.Toolkit.Execution">
    <method name="GetSteps"><arg type="aa{sv}" direction="out"/></method>
    <method name="GetLog"><arg type="u" direction="in"/><arg type="a(tuss)" direction="out"/>
    </method>
    <method name="OpenLiveView"><arg type="a{sv}" direction="in"/>
      <arg type="h" direction="out"/></method>
    <method name="ListArtifacts"><arg type="aa{sv}" direction="out"/></method>
    <property name="Status" type="s" access="read"/>
    <property name="Id" type="s" access="read"/>
    <property name="PlaybookName" type="s" access="read"/>
  </interface>
</node>'''


def live_message(header, payload=b''):
    raw = json.dumps(header).encode()
    return struct.pack('>II', len(raw), len(payload)) + raw + payload


class TestGtkLiveMalformed(GtkAppTestCase):
    """A stand-in daemon whose live view sends what the real one never does:
    the pane says what is wrong, keeps going after a bad frame, and closes
    the view on a malformed message. It also shows, from the daemon's side,
    that the view is closed as soon as the pane is hidden."""

    library = {}

    def manager_call(self, conn, sender, path, iface, method, params, invocation):
        if method == 'ListPlaybooks':
            invocation.return_value(GLib.Variant('(aa{sv})', ([],)))
        elif method == 'GetManagedObjects':
            invocation.return_value(GLib.Variant('(a{oa{sa{sv}}})', ({},)))
        else:
            invocation.return_dbus_error('org.freedesktop.DBus.Error.AccessDenied',
                                         'Not authorized: org.ignition.toolkit.view')

    def run_call(self, conn, sender, path, iface, method, params, invocation):
        if method == 'GetSteps' or method == 'ListArtifacts':
            invocation.return_value(GLib.Variant('(aa{sv})', ([],)))
        elif method == 'GetLog':
            invocation.return_value(GLib.Variant('(a(tuss))', ([],)))
        elif method == 'OpenLiveView':
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.views.append(ours)
            fds = Gio.UnixFDList.new_from_array([theirs.detach()])
            invocation.return_value_with_unix_fd_list(GLib.Variant('(h)', (0,)), fds)

    def run_property(self, conn, sender, path, iface, name):
        return GLib.Variant('s', {'Status': 'running', 'Id': FAKE_RUN.rsplit('/', 1)[1],
                                  'PlaybookName': 'Stand-in'}[name])

    def peer_closed(self, sock):
        """True once the app closed its end (recv returns EOF, never blocks)."""
        sock.setblocking(False)
        try:
            return sock.recv(1) == b''
        except BlockingIOError:
            return False

    def test_bad_frames_and_messages(self):
        self.views = []
        mark = self.mark()
        self.daemon.stop()
        self.hook_signal('DaemonPresent', lambda a: a[0] is False, mark)
        fake = Gio.DBusConnection.new_for_address_sync(
            self.bus.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        try:
            for iface in Gio.DBusNodeInfo.new_for_xml(FAKE_XML).interfaces:
                fake.register_object('/org/ignition/Toolkit', iface, self.manager_call, None,
                                     None)
            run_iface = Gio.DBusNodeInfo.new_for_xml(FAKE_RUN_XML).interfaces[0]
            fake.register_object(FAKE_RUN, run_iface, self.run_call, self.run_property, None)
            mark = self.mark()
            Gio.bus_own_name_on_connection(fake, 'org.ignition.Toolkit',
                                           Gio.BusNameOwnerFlags.NONE, None, None)
            self.hook_signal('DaemonPresent', lambda a: a[0] is True, mark)
            self.hook('OpenRun', FAKE_RUN)
            self.client.wait_for(lambda: self.views, what='the pane to open the live view')
            view = self.views[0]

            # A frame that is not a JPEG: said, and the next good frame shows.
            frame = {'type': 'frame', 'width': 640, 'height': 480, 'url': 'http://gw/x',
                     'step': 'one', 'timestamp': 1, 'sequence': 1}
            mark = self.mark()
            view.sendall(live_message(frame, b'\xff\xd8 not really a JPEG'))
            bad = self.hook_signal('LiveStatusShown', lambda a: a[1] == 'error', mark,
                                   'the pane to say the frame is broken')
            self.assertIn('A frame could not be shown', bad.args[2])
            mark = self.mark()
            view.sendall(live_message(dict(frame, sequence=2), SMALL_JPEG))
            shown = self.hook_signal('LiveFrameShown', lambda a: a[0] == FAKE_RUN, mark)
            self.assertEqual(shown.args[1:], ('http://gw/x', 'one', 2))
            live = self.hook('DescribeRun', FAKE_RUN)['live']
            self.assertEqual((live['frames'], live['width'], live['height']), (1, 32, 24))
            self.assertEqual(live['message'], '')

            # Unknown message types are skipped; a status message is shown as sent.
            mark = self.mark()
            view.sendall(live_message({'type': 'future-thing'}) +
                         live_message({'type': 'status', 'state': 'waiting',
                                       'message': 'the page is loading'}))
            shown = self.hook_signal('LiveStatusShown', lambda a: a[1] == 'waiting', mark)
            self.assertEqual(shown.args[2], 'the page is loading')

            # Hidden: the app closes its end at once, the daemon sees it.
            self.hook('ShowRunPane', FAKE_RUN, 'files')
            self.client.wait_for(lambda: self.peer_closed(view),
                                 what='the app to close the live view')
            self.hook('ShowRunPane', FAKE_RUN, 'live')
            self.client.wait_for(lambda: len(self.views) == 2,
                                 what='the pane to open the live view again')
            view = self.views[1]

            # A header longer than the protocol allows: said, and the view closed.
            mark = self.mark()
            view.sendall(struct.pack('>II', 5000, 0))
            bad = self.hook_signal('LiveStatusShown', lambda a: a[1] == 'error', mark)
            self.assertIn('malformed message (header of 5000 bytes)', bad.args[2])
            self.client.wait_for(lambda: self.peer_closed(view),
                                 what='the app to close the broken view')
            # The last good frame stays.
            self.assertEqual(self.hook('DescribeRun', FAKE_RUN)['live']['frames'], 1)
            self.hook('CloseRun', FAKE_RUN)
        finally:
            for v in self.views:
                v.close()
            fake.close_sync(None)


if __name__ == '__main__':
    reason = skip_reason()
    if reason:
        sys.stderr.write('skipped: %s\n' % reason)
        sys.exit(77)
    unittest.main(verbosity=2)
