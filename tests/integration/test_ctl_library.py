#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""ignitionctl playbook save|delete against the daemon's local library."""

import os
import tempfile
import unittest

from itk_harness import log_step, playbook
from test_ignitionctl import CtlTestCase


class TestCtlLibrary(CtlTestCase):

    def write(self, text):
        fd, path = tempfile.mkstemp(dir=self.tmp, suffix='.yaml')
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        return path

    def test_save_run_delete(self):
        source = playbook(log_step('a', 'saved by ignitionctl'), name='From ctl')
        result = self.ctl('playbook', 'save', 'mine/ctl.yaml', self.write(source))
        self.assertCtl(result, 0, 'playbook save')
        self.assertIn('Saved playbook mine/ctl.yaml', result.out)
        listed = {p['id']: p for p in self.json_of('playbooks')}
        self.assertTrue(listed['mine/ctl.yaml']['local'])
        self.assertFalse(listed['ctl/quick.yaml']['local'])
        self.assertCtl(self.ctl('run', 'mine/ctl.yaml'), 0, 'run the saved one')
        # From standard input.
        self.assertCtl(self.ctl('playbook', 'save', 'mine/stdin.yaml', '-', stdin=source), 0,
                       'save from stdin')
        self.assertCtl(self.ctl('playbook', 'delete', 'mine/stdin.yaml'), 0, 'delete')
        result = self.ctl('playbook', 'delete', 'mine/ctl.yaml')
        self.assertCtl(result, 0, 'delete')
        self.assertIn('Deleted playbook mine/ctl.yaml', result.out)
        self.assertNotIn('mine/ctl.yaml', [p['id'] for p in self.json_of('playbooks')])
        result = self.ctl('playbook', 'delete', 'mine/ctl.yaml')
        self.assertCtl(result, 66, 'delete again')
        self.assertOneLineError(result, 'mine/ctl.yaml')

    def test_refusals(self):
        bad = self.write('name: Broken\nsteps: [\n')
        result = self.ctl('playbook', 'save', 'bad.yaml', bad)
        self.assertCtl(result, 65, 'save an invalid playbook')
        self.assertOneLineError(result, 'not saved')
        result = self.ctl('playbook', 'delete', 'ctl/quick.yaml')
        self.assertCtl(result, 77, 'delete a shipped playbook')
        self.assertOneLineError(result, 'read-only')
        result = self.ctl('playbook', 'save', '../up.yaml', self.write(playbook(log_step('a', 'x'))))
        self.assertNotEqual(result.rc, 0)
        self.assertOneLineError(result, '..')
        result = self.ctl('playbook', 'save', 'x.yaml', os.path.join(self.tmp, 'missing.yaml'))
        self.assertCtl(result, 66, 'missing file')
        self.assertCtl(self.ctl('playbook', 'save', 'x.yaml'), 64, 'no FILE')
        self.assertCtl(self.ctl('playbook', 'rename', 'x.yaml'), 64, 'unknown action')


if __name__ == '__main__':
    unittest.main(verbosity=2)
