#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The writable local library over the bus: SavePlaybook and DeletePlaybook
write into STATEDIR/playbooks/local, which ListPlaybooks marks local and
GetPlaybook/StartExecution see at once; shipped and configured playbooks are
read-only; invalid playbooks and bad ids are refused and nothing is written.
(The polkit side, manage-library, is in test_polkit.py.)"""

import os
import unittest

from itk_harness import (INVALID_ARGS, INVALID_PLAYBOOK, MANAGER_IFACE, NO_SUCH_PLAYBOOK,
                         DaemonTestCase, GLib, dbus_error, log_step, main, playbook, step)


def h_step_run(target):
    return step('run', 'playbook.run', {'playbook': target})

ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied'

SHIPPED = playbook(log_step('a', 'shipped'), name='Shipped one')
CONFIGURED = playbook(log_step('a', 'configured'), name='Configured one')


class TestLibrary(DaemonTestCase):
    library = {'shipped.yaml': SHIPPED, 'group/nested.yaml': SHIPPED}
    config_library = {'site.yaml': CONFIGURED}

    def save(self, pid, source):
        return self.client.manager('SavePlaybook', GLib.Variant('(ss)', (pid, source)))

    def delete(self, pid):
        return self.client.manager('DeletePlaybook', GLib.Variant('(s)', (pid,)))

    def listed(self):
        return {p['id']: p for p in self.client.manager('ListPlaybooks')}

    def get(self, pid):
        return self.client.manager('GetPlaybook', GLib.Variant('(s)', (pid,)))

    def local_path(self, pid):
        return os.path.join(self.daemon.state_dir, 'playbooks', 'local', pid)

    def local_files(self):
        root = os.path.join(self.daemon.state_dir, 'playbooks', 'local')
        found = []
        for dirpath, _, files in os.walk(root):
            found += [os.path.relpath(os.path.join(dirpath, f), root) for f in files]
        return sorted(found)

    def assertError(self, name, call, *args, contains=None):
        with self.assertRaises(GLib.Error) as cm:
            call(*args)
        got, message = dbus_error(cm.exception)
        self.assertEqual(got, name, message)
        if contains is not None:
            self.assertIn(contains, message)
        return message

    def tearDown(self):
        for pid, p in self.listed().items():
            if p.get('local'):
                self.delete(pid)
        super().tearDown()

    def test_origins_marked(self):
        found = self.listed()
        self.assertFalse(found['shipped.yaml']['local'])
        self.assertEqual(found['shipped.yaml']['origin'], self.daemon.library_dir)
        self.assertFalse(found['site.yaml']['local'])
        self.assertEqual(found['site.yaml']['origin'],
                         os.path.join(self.daemon.config_dir, 'playbooks'))

    def test_save_list_get_run_delete(self):
        source = playbook(log_step('hello', 'from the local library'), name='Mine')
        self.assertEqual(self.save('mine/first.yaml', source), [])
        found = self.listed()['mine/first.yaml']
        self.assertTrue(found['local'])
        self.assertEqual(found['origin'], 'local')
        self.assertEqual(found['name'], 'Mine')
        self.assertTrue(found['valid'])
        self.assertEqual(self.get('mine/first.yaml')['source'], source)
        with open(self.local_path('mine/first.yaml')) as f:
            self.assertEqual(f.read(), source)
        # No temporary file left beside it.
        self.assertEqual(self.local_files(), ['mine/first.yaml'])
        path = self.client.start_execution('mine/first.yaml')
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')
        self.delete('mine/first.yaml')
        self.assertNotIn('mine/first.yaml', self.listed())
        self.assertError(NO_SUCH_PLAYBOOK, self.get, 'mine/first.yaml')
        self.assertError(NO_SUCH_PLAYBOOK, self.delete, 'mine/first.yaml')

    def test_replace_seen_at_once(self):
        # Same length, same second: the library must not serve its cached copy.
        first = playbook(log_step('a', 'version-A'), name='Swap')
        second = playbook(log_step('a', 'version-B'), name='Swap')
        self.assertEqual(len(first), len(second))
        self.save('swap.yaml', first)
        self.assertIn('version-A', self.get('swap.yaml')['source'])
        self.save('swap.yaml', second)
        self.assertIn('version-B', self.get('swap.yaml')['source'])

    def test_invalid_refused_nothing_written(self):
        bad = 'name: Broken\nsteps:\n  - id: a\n    type: utility.no_such_type\n'
        message = self.assertError(INVALID_PLAYBOOK, self.save, 'broken.yaml', bad)
        self.assertIn('not saved', message)
        self.assertRegex(message, r'line \d+, column \d+')
        self.assertNotIn('broken.yaml', self.listed())
        self.assertEqual(self.local_files(), [])
        # Replacing a good one with a bad one keeps the good one.
        good = playbook(log_step('a', 'good'))
        self.save('keep.yaml', good)
        self.assertError(INVALID_PLAYBOOK, self.save, 'keep.yaml', 'steps: [')
        self.assertEqual(self.get('keep.yaml')['source'], good)

    def test_bad_ids(self):
        good = playbook(log_step('a', 'x'))
        for pid, why in [('../escape.yaml', '..'), ('/etc/abs.yaml', 'relative'),
                         ('a/../../b.yaml', '..'), ('a/./b.yaml', '..'),
                         ('notyaml.txt', '.yaml'), ('.hidden.yaml', 'hidden'),
                         ('a//b.yaml', 'empty'), ('sp ace.yaml', 'letters'),
                         ('a/b/c/d/e/f.yaml', 'deep'), ('x' * 1100 + '.yaml', 'limit'),
                         ('', 'empty')]:
            with self.subTest(pid=pid):
                self.assertError(INVALID_ARGS, self.save, pid, good, contains=why)
                self.assertError(INVALID_ARGS, self.delete, pid, contains=why)
        self.assertEqual(self.local_files(), [])
        self.assertFalse(os.path.exists(os.path.join(self.daemon.state_dir, 'escape.yaml')))

    def test_too_large_refused(self):
        big = playbook(log_step('a', 'x')) + '#' * (1024 * 1024 + 1)
        self.assertError(INVALID_PLAYBOOK, self.save, 'big.yaml', big, contains='limit')
        self.assertEqual(self.local_files(), [])

    def test_read_only_refused(self):
        for pid in ('shipped.yaml', 'group/nested.yaml', 'site.yaml'):
            with self.subTest(pid=pid):
                self.assertError(ACCESS_DENIED, self.delete, pid, contains='read-only')
                self.assertError(ACCESS_DENIED, self.save, pid, playbook(log_step('a', 'x')),
                                 contains='read-only')
        self.assertIn('shipped.yaml', self.listed())
        self.assertTrue(os.path.exists(os.path.join(self.daemon.library_dir, 'shipped.yaml')))
        self.assertEqual(self.local_files(), [])

    def test_invalid_local_source_readable(self):
        # A saved playbook can become invalid later (a nested one it runs is
        # gone); the editor still gets its text to fix it.
        self.save('inner.yaml', playbook(log_step('a', 'inner')))
        outer = playbook(h_step_run('inner.yaml'), name='Outer')
        self.save('outer.yaml', outer)
        self.assertTrue(self.listed()['outer.yaml']['valid'])
        self.delete('inner.yaml')
        got = self.get('outer.yaml')
        self.assertFalse(got['valid'])
        self.assertEqual(got['source'], outer)
        # A file that does not even parse (written by hand) comes with its text too.
        broken = 'name: Broken\nsteps: [\n'
        with open(self.local_path('broken.yaml'), 'w') as f:
            f.write(broken)
        got = self.get('broken.yaml')
        self.assertFalse(got['valid'])
        self.assertEqual(got['source'], broken)

    def test_kept_across_restart(self):
        source = playbook(log_step('a', 'persisted'), name='Persisted')
        self.save('persist.yaml', source)
        self.daemon.restart(self.client)
        self.assertTrue(self.listed()['persist.yaml']['local'])
        self.assertEqual(self.get('persist.yaml')['source'], source)

    def test_introspected(self):
        xml = self.client.introspect('/org/ignition/Toolkit')
        self.assertIn('<method name="SavePlaybook">', xml)
        self.assertIn('<method name="DeletePlaybook">', xml)
        self.assertIn(MANAGER_IFACE, xml)


if __name__ == '__main__':
    main()
