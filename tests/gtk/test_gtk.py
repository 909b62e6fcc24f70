# SPDX-License-Identifier: LGPL-2.1-or-later
"""ignition-toolkit-gtk end to end: the run dialog starts a run, the run window
follows it, its controls drive it and follow its real status, history shows
the same steps. Screenshots of the main window and a run window are saved to
ITK_GTK_ARTIFACTS (the build dir). Exits 77 without Xvfb or the app."""

import hashlib
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gtk_harness import (  # noqa: E402
    HOOK_PATH, TIMEOUT, GLib, GtkAppTestCase, log_step, playbook, skip_reason, sleep_step)

SLOW = playbook(
    log_step('hello', 'hello from {{ parameter.who }}'),
    sleep_step('wait', '{{ parameter.seconds }}', name='Wait a while'),
    log_step('bye', 'bye'),
    name='GTK slow', parameters=[
        {'name': 'seconds', 'type': 'integer', 'default': 60,
         'description': 'How long the wait step sleeps'},
        {'name': 'who', 'type': 'string', 'required': False, 'default': 'nobody',
         'description': 'Who says hello'},
    ], description='Logs, sleeps, logs: long enough to pause and cancel.')

UPLOAD = playbook(
    log_step('got', 'module at {{ parameter.module }}'),
    name='GTK upload', parameters=[
        {'name': 'module', 'type': 'file', 'description': 'The module to install'},
    ], description='Logs where its file parameter landed.')

QUICK = playbook(log_step('one', 'one'), log_step('two', 'two'), name='GTK quick',
                 description='Two log lines.')


def artifacts_dir():
    return os.environ.get('ITK_GTK_ARTIFACTS') or os.getcwd()


def png_size(path):
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', '%s is not a PNG' % path
    return struct.unpack('>II', head[16:24])


class TestGtkRun(GtkAppTestCase):
    library = {'gtk/slow.yaml': SLOW, 'gtk/quick.yaml': QUICK, 'gtk/upload.yaml': UPLOAD}
    retention = 600

    def start_from_dialog(self, playbook_id, **values):
        mark = self.mark()
        self.hook('OpenRunDialog', playbook_id)
        for name, value in values.items():
            self.hook('SetDialogParameter', name, value)
        self.hook('StartFromDialog')
        opened = self.hook_signal('RunViewOpened', after=mark, what='the run window to open')
        path = opened.args[0]
        self.runs.append((self.client, path))
        return path

    def test_cancel_pause_resume_from_the_run_window(self):
        path = self.start_from_dialog('gtk/slow.yaml', seconds='60', who='gtk')
        # The parameters typed in the dialog reached the run.
        self.client.wait_log(path, 'hello from gtk')
        self.client.wait_step(path, 'wait', 'running')
        view = self.wait_shown(path, 'running')
        self.assertEqual(view['status-text'], 'Running')
        self.assertEqual(sorted(view['controls']),
                         ['cancel', 'debug', 'pause', 'skip', 'skip-back'])

        mark = self.mark()
        self.hook('Press', path, 'pause', signature='(ss)')
        self.client.wait_status(path, 'paused')
        view = self.wait_shown(path, 'paused', mark)
        self.assertIn('resume', view['controls'])
        self.assertNotIn('pause', view['controls'])

        mark = self.mark()
        self.hook('Press', path, 'resume', signature='(ss)')
        view = self.wait_shown(path, 'running', mark)
        self.assertIn('pause', view['controls'])
        self.hook_signal('StatusPainted', lambda a: a[0] == path and a[1] == 'running', mark,
                         'the run window to paint its status')

        # A screenshot of a live run window, for the README.
        shot = os.path.join(artifacts_dir(), 'gtk-run-view.png')
        self.hook('Screenshot', path, shot)
        width, height = png_size(shot)
        self.assertGreater(width * height, 0)

        mark = self.mark()
        self.hook('Press', path, 'cancel', signature='(ss)')
        finished = self.client.wait_finished(path)
        self.assertEqual(finished.args[0], 'cancelled')
        view = self.wait_shown(path, 'cancelled', mark)
        self.assertEqual(view['controls'], [])
        self.assertEqual(view['status-text'], 'Cancelled')
        # The window shows the daemon's truth: a control it no longer offers is refused.
        with self.assertRaises(Exception):
            self.hook('Press', path, 'cancel', signature='(ss)')

    def test_debug_skip_and_skip_back_from_the_run_window(self):
        path = self.start_from_dialog('gtk/slow.yaml', seconds='60')
        self.client.wait_step(path, 'wait', 'running')
        self.wait_shown(path, 'running')

        # Debug: the toggle shows DebugMode as the daemon reports it.
        self.hook('Press', path, 'debug', signature='(ss)')
        self.client.wait_signal(path, 'PropertiesChanged',
                                lambda a: a[1].get('DebugMode') is True,
                                what='DebugMode to turn on')
        self.client.wait_for(lambda: self.hook('DescribeRun', path)['debug'],
                             what='the Debug toggle to show it')

        # Skip abandons the sleep; in debug mode the run then pauses before 'bye'.
        mark = self.mark()
        self.hook('Press', path, 'skip', signature='(ss)')
        self.client.wait_step(path, 'wait', 'skipped')
        self.client.wait_status(path, 'paused')
        view = self.wait_shown(path, 'paused', mark)
        self.assertIn('resume', view['controls'])
        self.assertIn('skip-back', view['controls'])

        def step_shown(step_id, status):
            def check():
                view = self.hook('DescribeRun', path)
                return view if (step_id, status) in [(s[0], s[1]) for s in view['steps']] else None
            return self.client.wait_for(check, what='step %s shown %s' % (step_id, status))
        step_shown('wait', 'skipped')

        # Skip back while paused moves the cursor back: 'wait' runs again on Resume.
        self.hook('Press', path, 'skip-back', signature='(ss)')
        self.hook('Press', path, 'debug', signature='(ss)')
        self.client.wait_signal(path, 'PropertiesChanged',
                                lambda a: a[1].get('DebugMode') is False,
                                what='DebugMode to turn off')
        mark = self.mark()
        self.hook('Press', path, 'resume', signature='(ss)')
        self.client.wait_for(
            lambda: [m for m in self.client.signals(path, 'StepChanged')
                     if m.seq >= mark and m.args[1] == 'wait' and m.args[2] == 'running'],
            what='wait to run again')
        self.wait_shown(path, 'running', mark)
        step_shown('wait', 'running')
        self.hook('Press', path, 'cancel', signature='(ss)')
        self.assertEqual(self.client.wait_finished(path).args[0], 'cancelled')

    def test_finished_run_from_history_shows_the_same_steps(self):
        path = self.start_from_dialog('gtk/quick.yaml')
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')
        self.wait_shown(path, 'completed')
        run_id = self.client.get_prop(path, 'Id')
        steps = self.client.get_steps(path)

        def live_steps_final():
            view = self.hook('DescribeRun', path)
            return view if [s[1] for s in view['steps']] == ['completed', 'completed'] else None
        live = self.client.wait_for(live_steps_final, what='the live window to show both steps')

        mark = self.mark()
        self.hook('OpenRecord', run_id)
        self.hook_signal('RunViewUpdated', lambda a: a[1] == run_id, mark,
                         'the history window to show its steps')
        record = self.hook('DescribeRun', run_id)
        self.assertEqual(record['status'], 'completed')
        self.assertEqual(record['steps'], live['steps'])
        self.assertEqual([s[0] for s in record['steps']], [s['step-id'] for s in steps])
        self.assertEqual(record['controls'], [])
        self.assertGreaterEqual(record['log-lines'], 2)

        # The History page's status filter shows what GetHistory has for it.
        for status in ('completed', 'failed', ''):
            mark = self.mark()
            self.hook('FilterHistory', status)
            shown = self.hook_signal('HistoryShown', after=mark,
                                     what='the History page filtered by %r' % status)
            expected = len(self.client.manager('GetHistory', GLib.Variant('(us)', (0, status))))
            self.assertEqual(shown.args[0], expected)
            self.assertEqual(self.hook('CountRows', 'history'), expected)

    def test_main_window_lists_and_screenshot(self):
        self.assertEqual(self.hook('CountRows', 'playbooks'), 3)
        # Search matches ids, names and descriptions, case-insensitively.
        self.hook('SearchPlaybooks', 'LONG ENOUGH')
        self.assertEqual(self.hook('CountRows', 'playbooks'), 1)
        self.hook('SearchPlaybooks', 'gtk/')
        self.assertEqual(self.hook('CountRows', 'playbooks'), 3)
        self.hook('SearchPlaybooks', 'no such thing')
        self.assertEqual(self.hook('CountRows', 'playbooks'), 0)
        self.hook('SearchPlaybooks', '')
        self.hook('SelectPlaybook', 'gtk/slow.yaml')
        self.hook('ShowPage', 'playbooks')
        self.hook_signal('FirstFrame', what='the main window to be painted')
        shot = os.path.join(artifacts_dir(), 'gtk-main-window.png')
        self.hook('Screenshot', 'main', shot)
        width, height = png_size(shot)
        self.assertGreater(width, 400)
        self.assertGreater(height, 300)

    def test_file_parameter_is_handed_over_not_named(self):
        # The daemon takes no typed path for a file parameter: the dialog reads
        # the chosen file itself and hands it over (StageInputFile), and the run
        # sees its own copy inside the run folder, with the same bytes.
        local = os.path.join(self.workdir, 'module v1.modl')
        body = os.urandom(70000)
        with open(local, 'wb') as f:
            f.write(body)
        path = self.start_from_dialog('gtk/upload.yaml', module=local)
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')
        lines = [line[3] for line in self.client.call(path, 'GetLog', GLib.Variant('(u)', (0,)))]
        got = [line for line in lines if line.startswith('module at ')]
        self.assertEqual(len(got), 1, lines)
        self.assertTrue(got[0].endswith('/inputs/module/module v1.modl'), got[0])
        self.assertNotIn(local, got[0])
        digest = hashlib.sha256(body).hexdigest()
        self.assertIn("input file 'module': module v1.modl, 70000 bytes, sha256 " + digest, lines)

    def test_unreadable_file_parameter_is_refused_in_the_dialog(self):
        mark = self.mark()
        self.hook('OpenRunDialog', 'gtk/upload.yaml')
        self.hook('SetDialogParameter', 'module', os.path.join(self.workdir, 'absent.modl'))
        self.hook('StartFromDialog')
        refused = self.hook_signal('DialogError', after=mark, what='the dialog to show an error')
        self.assertIn('module', refused.args[0])
        self.assertFalse([m for m in self.client.signals(member='RunViewOpened') if m.seq >= mark])

    def test_dialog_shows_the_daemons_refusal(self):
        # A malformed integer: the daemon refuses the start, the dialog says why
        # and stays open, and no run window opens.
        mark = self.mark()
        self.hook('OpenRunDialog', 'gtk/slow.yaml')
        self.hook('SetDialogParameter', 'seconds', 'soon')
        self.hook('StartFromDialog')
        refused = self.hook_signal('DialogError', after=mark, what='the dialog to show an error')
        self.assertIn('seconds', refused.args[0])
        self.assertFalse([m for m in self.client.signals(member='RunViewOpened') if m.seq >= mark])
        # Corrected in the same dialog, the run starts.
        self.hook('SetDialogParameter', 'seconds', '0')
        self.hook('StartFromDialog')
        opened = self.hook_signal('RunViewOpened', after=mark, what='the run window to open')
        self.runs.append((self.client, opened.args[0]))
        self.assertEqual(self.client.wait_finished(opened.args[0]).args[0], 'completed')


class TestGtkCredentials(GtkAppTestCase):
    library = {'gtk/quick.yaml': QUICK}

    def credentials(self):
        return {c['name']: c for c in self.client.manager('ListCredentials')}

    def save_and_wait(self):
        mark = self.mark()
        self.hook('SaveCredential')
        return self.hook_signal('CredentialsShown', after=mark, what='the list to be read again')

    def test_add_then_edit_keeps_the_secret_write_only(self):
        secret = 'Gtk-Secret-7f3e'
        self.hook('EditCredential', '')
        for key, value in (('name', 'gtk-cred'), ('username', 'admin'),
                           ('gateway-url', 'http://127.0.0.1:1'), ('password', secret)):
            self.hook('SetCredentialField', key, value)
        self.save_and_wait()
        stored = self.credentials()['gtk-cred']
        self.assertEqual(stored['username'], 'admin')
        self.assertIs(stored['has-password'], True)
        self.assertIs(stored['has-api-token'], False)

        # Editing shows everything but the secrets, and an empty secret keeps the stored one.
        self.hook('EditCredential', 'gtk-cred')
        fields = self.hook('CredentialDialogFields')
        self.assertEqual(fields['username'], 'admin')
        self.assertEqual(fields['password'], '')
        self.assertEqual(fields['api-token'], '')
        self.hook('SetCredentialField', 'description', 'edited in the GTK client')
        self.save_and_wait()
        stored = self.credentials()['gtk-cred']
        self.assertEqual(stored['description'], 'edited in the GTK client')
        self.assertIs(stored['has-password'], True)
        # The secret reached neither the app's output nor the list.
        self.assertNotIn(secret, self.app_log())
        self.assertNotIn(secret, repr(stored))


class TestGtkDaemonAbsent(GtkAppTestCase):
    library = {'gtk/quick.yaml': QUICK}

    def test_window_says_the_service_is_absent_and_reconnects(self):
        self.assertEqual(self.hook('MainPage'), 'pages')
        mark = self.mark()
        self.daemon.stop()
        self.hook_signal('DaemonPresent', lambda a: a[0] is False, mark,
                         'the window to see the daemon leave')
        self.assertEqual(self.hook('MainPage'), 'absent')
        mark = self.mark()
        self.daemon.start(self.client)
        self.hook_signal('DaemonPresent', lambda a: a[0] is True, mark,
                         'the window to see the daemon come back')
        self.hook_signal('PlaybooksLoaded', lambda a: a[0] == 1, mark,
                         'the library to be read again')
        self.assertEqual(self.hook('MainPage'), 'pages')


FAKE_XML = '''<node>
  <interface name="org.ignition.Toolkit.Manager">
    <method name="ListPlaybooks"><arg type="aa{sv}" direction="out"/></method>
    <method name="ListCredentials"><arg type="aa{sv}" direction="out"/></method>
    <method name="GetHistory"><arg type="u" direction="in"/><arg type="s" direction="in"/>
      <arg type="aa{sv}" direction="out"/></method>
  </interface>
  <interface name="org.freedesktop.DBus.ObjectManager">
    <method name="GetManagedObjects"><arg type="a{oa{sa{sv}}}" direction="out"/></method>
  </interface>
</node>'''


class TestGtkNotAuthorized(GtkAppTestCase):
    """A stand-in daemon that refuses the calls polkit would refuse a user.

    The real daemon runs as root here and root is always authorized, so the
    refusal comes from a small service with the daemon's name."""

    library = {'gtk/quick.yaml': QUICK}

    def handle(self, conn, sender, path, iface, method, params, invocation):
        if method == 'ListPlaybooks':
            invocation.return_value(GLib.Variant('(aa{sv})', ([],)))
        elif method == 'GetManagedObjects':
            invocation.return_value(GLib.Variant('(a{oa{sa{sv}}})', ({},)))
        else:
            invocation.return_dbus_error('org.freedesktop.DBus.Error.AccessDenied',
                                         'Not authorized: org.ignition.toolkit.view')

    def test_pages_say_not_authorized(self):
        from gi.repository import Gio
        mark = self.mark()
        self.daemon.stop()
        self.hook_signal('DaemonPresent', lambda a: a[0] is False, mark)
        fake = Gio.DBusConnection.new_for_address_sync(
            self.bus.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        try:
            node = Gio.DBusNodeInfo.new_for_xml(FAKE_XML)
            for iface in node.interfaces:
                fake.register_object('/org/ignition/Toolkit', iface, self.handle, None, None)
            mark = self.mark()
            Gio.bus_own_name_on_connection(fake, 'org.ignition.Toolkit',
                                           Gio.BusNameOwnerFlags.NONE, None, None)
            history = self.hook_signal('PageMessage', lambda a: a[0] == 'history', mark,
                                       'the History page to say why it is empty')
            self.assertEqual(history.args[1], 'Not Authorized')
            self.assertIn('not authorized', history.args[2])
            credentials = self.hook_signal('PageMessage', lambda a: a[0] == 'credentials', mark)
            self.assertEqual(credentials.args[1], 'Not Authorized')
        finally:
            fake.close_sync(None)



class TestGtkNotAuthorizedByTheDaemon(GtkAppTestCase):
    """The real daemon refuses the app's user.

    The app runs as nobody. The test bus has no polkit, so the daemon's
    fallback decides: only root and members of [Authorization] Group=
    (ignition-toolkit by default, which nobody is not in) pass. Reading the
    library needs no authorization; the history does."""

    library = {'gtk/quick.yaml': QUICK}
    app_user = 'nobody'

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest('needs root to run the app as another user')
        import grp
        import pwd
        try:
            pwd.getpwnam(cls.app_user)
        except KeyError:
            raise unittest.SkipTest('no user %s' % cls.app_user)
        try:
            if cls.app_user in grp.getgrnam('ignition-toolkit').gr_mem:
                raise unittest.SkipTest('%s is in the ignition-toolkit group here' % cls.app_user)
        except KeyError:
            pass  # no such group: only root passes, as wanted
        # A bus that lets every user connect (dbus-test.conf admits its owner only).
        saved = os.environ.get('ITK_DBUS_CONFIG')
        os.environ['ITK_DBUS_CONFIG'] = os.path.join(
            os.path.dirname(os.path.abspath(__file__)), '..', 'integration',
            'dbus-polkit-test.conf')
        try:
            super().setUpClass()
        finally:
            if saved is None:
                del os.environ['ITK_DBUS_CONFIG']
            else:
                os.environ['ITK_DBUS_CONFIG'] = saved

    def test_pages_say_not_authorized(self):
        history = self.hook_signal('PageMessage', lambda a: a[0] == 'history', 0,
                                   'the History page to say why it is empty')
        self.assertEqual(history.args[1], 'Not Authorized')
        self.assertIn('not authorized', history.args[2])
        # The daemon is there (the library needs no authorization): not "absent".
        self.assertEqual(self.hook('MainPage'), 'pages')
        self.assertTrue(self.client.signals(HOOK_PATH, 'PlaybooksLoaded'))

if __name__ == '__main__':
    reason = skip_reason()
    if reason:
        sys.stderr.write('skipped: %s\n' % reason)
        sys.exit(77)
    unittest.main(verbosity=2)
