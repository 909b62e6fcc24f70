#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The old tool's playbooks (ITK_COMPAT_PLAYBOOKS, by default ../shared/compat/playbooks
beside the source tree) against the daemon's validator and library.

They are not part of this repository: a clone with nothing beside it has none,
so this suite skips (exit 77, the reason on stderr) instead of failing."""

import glob
import os
import sys

from itk_harness import DaemonTestCase, GLib, compat_playbooks, main, yaml

HAVE_CHROMIUM = os.access('/usr/bin/chromium', os.X_OK)
# browser.* and perspective.* run when Chromium is installed; without it they
# are refused naming the package.
UNSUPPORTED_PREFIXES = ('designer.', 'fat.') + (() if HAVE_CHROMIUM else ('browser.', 'perspective.'))
REFUSED_MESSAGES = ('not supported yet', "Debian package 'chromium'")


class TestCompatPlaybooks(DaemonTestCase):
    """The old tool's playbooks validate; fat/designer steps would be "not
    supported yet" (browser/perspective ones too without Chromium), each naming
    its step."""
    playbook_path = (compat_playbooks(),)

    def test_compat_playbooks_validate(self):
        root = compat_playbooks()
        files = sorted(glob.glob(os.path.join(root, '**', '*.yaml'), recursive=True))
        self.assertGreater(len(files), 20, 'no compat playbooks under ' + root)
        checked_unsupported = 0
        for path in files:
            rel = os.path.relpath(path, root)
            with open(path) as f:
                source = f.read()
            doc = yaml.safe_load(source)
            diags = self.client.manager('ValidatePlaybook', GLib.Variant('(s)', (source,)))
            errors = [d for d in diags if d['severity'] == 'error']
            unsupported = [s for s in doc['steps']
                           if str(s.get('type', '')).startswith(UNSUPPORTED_PREFIXES)]
            for s in unsupported:
                mine = [d for d in errors if d['step-id'] == s['id']]
                self.assertTrue(mine, '%s: step %s (%s) has no error' % (rel, s['id'],
                                                                        s['type']))
                self.assertTrue(any(m in mine[0]['message'] for m in REFUSED_MESSAGES), rel)
                self.assertIn(s['id'], mine[0]['message'], rel)
                self.assertGreater(mine[0]['line'], 0, rel)
                checked_unsupported += 1
            # Nothing else is wrong with them (a nested playbook that has such
            # steps is the only other accepted complaint).
            for d in errors:
                self.assertTrue(any(m in d['message'] for m in REFUSED_MESSAGES),
                                '%s: %r' % (rel, d))
            if not unsupported and not any(s.get('type') == 'playbook.run'
                                           for s in doc['steps']):
                self.assertEqual(errors, [], rel)
        if HAVE_CHROMIUM:
            # Issue 10: with Chromium every one of the old playbooks is valid.
            self.assertEqual(checked_unsupported, 0)
        else:
            self.assertGreater(checked_unsupported, 50)
        self.assertDaemonAlive()

    def test_compat_library_is_listed(self):
        listed = {p['id']: p for p in self.client.manager('ListPlaybooks')}
        self.assertIn('gateway/gateway_login.yaml', listed)
        # Its browser steps run where Chromium is installed.
        self.assertIs(listed['gateway/gateway_login.yaml']['valid'], HAVE_CHROMIUM)
        self.assertIs(listed['designer/launch_designer_linux.yaml']['valid'], True)
        if not HAVE_CHROMIUM:
            self.assertTrue(any('chromium' in e
                                for e in listed['gateway/gateway_login.yaml']['errors']))


if __name__ == '__main__':
    if not os.path.isdir(compat_playbooks()):
        print('SKIP: no compat playbooks at %s (set ITK_COMPAT_PLAYBOOKS)' % compat_playbooks(),
              file=sys.stderr)
        sys.exit(77)
    main()
