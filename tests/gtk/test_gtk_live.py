# SPDX-License-Identifier: LGPL-2.1-or-later
"""ignition-toolkit-gtk's live view of a browser run: the run window shows the
simulator page's frames with their URL and step, keeps the last frame with a
"Paused" label while paused, sends a click on the picture to the page only
while paused, and previews the run's screenshot. Saves a screenshot of the run
window with the live view (ITK_GTK_ARTIFACTS/gtk-run-live-view.png).
Exits 77 without Xvfb, the app, /usr/bin/chromium or the gateway simulator."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gtk_harness import GtkAppTestCase, _die_with_parent, playbook, skip_reason, sleep_step  # noqa: E402,E501
from itk_harness import step  # noqa: E402
from test_artifacts import sim_binary  # noqa: E402
from test_gtk import artifacts_dir, png_size  # noqa: E402


class TestGtkLiveView(GtkAppTestCase):

    def setUp(self):
        super().setUp()
        self.sim = subprocess.Popen(
            [sim_binary(), '--state-dir', tempfile.mkdtemp(dir=self.workdir, prefix='sim-')],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        self.addCleanup(self.stop_sim)
        m = re.search(r'listening on (http://\S+)', self.sim.stdout.readline().decode())
        self.assertIsNotNone(m, 'itk-gateway-sim did not start')
        self.url = m.group(1) + '/sim/clicks'

    def stop_sim(self):
        self.sim.terminate()
        self.sim.wait(10)
        self.sim.stdout.close()

    def test_frames_pause_click_and_screenshot(self):
        source = playbook(
            step('open', 'browser.navigate', {'url': self.url}),
            step('shot', 'browser.screenshot', {'name': 'page.png'}),
            sleep_step('hold', 120),
            step('check', 'browser.verify_text', {'selector': '#clicks li', 'text': ','}),
            step('keys', 'browser.verify_text', {'selector': '#keys li', 'text': 'Enter'}))
        path = self.start(source)
        self.client.wait_step(path, 'hold', 'running', timeout=90)
        mark = self.mark()
        self.hook('OpenRun', path)
        frame = self.hook_signal('LiveFrameShown', lambda a: a[0] == path, mark,
                                 'the run window to show a frame of the page')
        self.assertEqual(frame.args[1], self.url)
        self.assertEqual(frame.args[2], 'hold')
        self.assertGreater(frame.args[3], 0)
        live = self.hook('DescribeRun', path)['live']
        self.assertEqual(live['url'], self.url)
        self.assertEqual(live['step'], 'Step: hold')
        self.assertGreater(live['width'], 100)
        self.assertGreater(live['height'], 100)
        self.assertIs(live['paused'], False)

        # Running: a click on the picture is refused with a clear message.
        mark = self.mark()
        self.hook('LiveClick', path, 0.3, 0.2, signature='(sdd)')
        refused = self.hook_signal('LiveInputSent', lambda a: a[0] == path, mark)
        self.assertEqual(refused.args[1], 'not paused')
        self.assertIn('only while the run is paused or in debug mode',
                      self.hook('DescribeRun', path)['live']['message'])
        mark = self.mark()
        self.hook('LiveKey', path, 'Return')
        refused = self.hook_signal('LiveInputSent', lambda a: a[0] == path, mark)
        self.assertEqual(refused.args[1], 'not paused')

        # In debug mode a running page takes clicks too.
        self.hook('Press', path, 'debug', signature='(ss)')
        self.client.wait_for(lambda: self.hook('DescribeRun', path)['debug'],
                             what='the window to show debug mode')
        mark = self.mark()
        self.hook('LiveClick', path, 0.25, 0.25, signature='(sdd)')
        sent = self.hook_signal('LiveInputSent', lambda a: a[0] == path, mark)
        self.assertEqual(sent.args[1], '')
        self.client.wait_log(path, 'operator clicked (left) at ')
        self.hook('Press', path, 'debug', signature='(ss)')
        self.client.wait_for(lambda: not self.hook('DescribeRun', path)['debug'],
                             what='the window to show debug mode off')

        # Paused: the last frame stays, the label says so, and a click reaches the page.
        mark = self.mark()
        self.hook('Press', path, 'pause', signature='(ss)')
        view = self.wait_shown(path, 'paused', mark)
        self.assertIs(view['live']['paused'], True)
        self.assertGreaterEqual(view['live']['frames'], 1)
        self.assertGreater(view['live']['width'], 100)
        self.assertEqual(view['live']['message'], '')
        shot = os.path.join(artifacts_dir(), 'gtk-run-live-view.png')
        self.hook('Screenshot', path, shot)
        width, height = png_size(shot)
        self.assertGreater(width, 800)

        mark = self.mark()
        self.hook('LiveClick', path, 0.3, 0.2, signature='(sdd)')
        sent = self.hook_signal('LiveInputSent', lambda a: a[0] == path, mark)
        self.assertEqual(sent.args[1], '')
        self.client.wait_for(
            lambda: len([m for m in self.client.signals(path, 'Log')
                         if m.args[3].startswith('operator clicked (left) at ')]) == 2,
            what='the second click in the run\'s log')
        # Keys typed on the picture reach the page too: Enter by its DOM name.
        mark = self.mark()
        self.hook('LiveKey', path, 'Return')
        sent = self.hook_signal('LiveInputSent', lambda a: a[0] == path, mark)
        self.assertEqual(sent.args[1], '')
        self.client.wait_log(path, 'operator pressed Enter on ')
        # A key the page is not given (a modifier alone) is left to the window.
        with self.assertRaises(Exception):
            self.hook('LiveKey', path, 'Shift_L')
        # The page changed: a newer frame is shown.
        self.hook_signal('LiveFrameShown', lambda a: a[0] == path and a[3] > frame.args[3],
                         mark, 'a frame of the clicked page')

        # The screenshot step's file, previewed from the Files pane.
        self.hook('ShowRunPane', path, 'files')
        self.assertIs(self.hook('DescribeRun', path)['live']['watching'], False)
        names = [a[0] for a in self.hook('DescribeRun', path)['artifacts']]
        self.assertIn('page.png', names)
        mark = self.mark()
        self.hook('PreviewArtifact', path, 'page.png')
        preview = self.hook_signal('ArtifactPreviewShown', lambda a: a[0] == 'page.png', mark)
        self.assertEqual(preview.args[2], '')
        self.assertRegex(preview.args[1], r'^\d+x\d+$')

        # The click and the key reached the page: the verify steps after the sleep see them.
        self.hook('ShowRunPane', path, 'live')
        mark = self.mark()
        self.call(path, 'Skip')
        self.call(path, 'Resume')
        fin = self.client.wait_finished(path, 60)
        self.assertEqual(fin.args[0], 'completed', self.client.describe(path))
        self.hook_signal('LiveStatusShown', lambda a: a[0] == path and a[1] == 'closed', mark,
                         'the live view to say the run ended')
        self.assertGreaterEqual(self.hook('DescribeRun', path)['live']['frames'], 1)


def skip():
    reason = skip_reason()
    if reason:
        return reason
    if not os.access('/usr/bin/chromium', os.X_OK):
        return '/usr/bin/chromium is not installed (Debian package chromium)'
    if sim_binary() is None:
        return 'itk-gateway-sim is not built'
    return None


if __name__ == '__main__':
    reason = skip()
    if reason:
        sys.stderr.write('skipped: %s\n' % reason)
        sys.exit(77)
    unittest.main(verbosity=2)
