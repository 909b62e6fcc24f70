#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The live introspection of the daemon is the contract, org.ignition.Toolkit.xml."""

import xml.etree.ElementTree as ET

from itk_harness import (EXECUTION_IFACE, EXECUTION_PREFIX, MANAGER_IFACE, MANAGER_PATH,
                         OBJECT_MANAGER_IFACE, DaemonTestCase, GLib, contract_xml, main,
                         playbook, sleep_step)

STANDARD = {
    'org.freedesktop.DBus.Peer',
    'org.freedesktop.DBus.Introspectable',
    'org.freedesktop.DBus.Properties',
    'org.freedesktop.DBus.ObjectManager',
}
EMITS = 'org.freedesktop.DBus.Property.EmitsChangedSignal'


def describe_interface(iface):
    """A comparable description of one <interface> element."""
    def args(element, default_direction):
        return tuple((a.get('name'), a.get('type'), a.get('direction', default_direction))
                     for a in element.findall('arg'))

    def emits(prop):
        for a in prop.findall('annotation'):
            if a.get('name') == EMITS:
                return a.get('value')
        return 'true'

    return {
        'methods': {m.get('name'): args(m, 'in') for m in iface.findall('method')},
        'signals': {s.get('name'): args(s, 'out') for s in iface.findall('signal')},
        'properties': {p.get('name'): (p.get('type'), p.get('access'), emits(p))
                       for p in iface.findall('property')},
    }


def interfaces(xml_text):
    root = ET.fromstring(xml_text)
    return {i.get('name'): i for i in root.findall('interface')}


class TestIntrospection(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(contract_xml()) as f:
            cls.contract = interfaces(f.read())

    def test_contract_has_both_interfaces(self):
        # Guards the comparisons below against a contract that lost an interface.
        self.assertEqual(set(self.contract), {MANAGER_IFACE, EXECUTION_IFACE})
        self.assertIn('StartExecution', describe_interface(self.contract[MANAGER_IFACE])['methods'])
        self.assertIn('Cancel', describe_interface(self.contract[EXECUTION_IFACE])['methods'])

    def assertInterfaceMatches(self, live, name):
        want = describe_interface(self.contract[name])
        got = describe_interface(live[name])
        for kind in ('methods', 'signals', 'properties'):
            self.assertEqual(sorted(got[kind]), sorted(want[kind]),
                             '%s: the %s differ from the contract' % (name, kind))
            for member, description in want[kind].items():
                self.assertEqual(got[kind][member], description,
                                 '%s.%s differs from the contract' % (name, member))

    def test_manager_object(self):
        live = interfaces(self.client.introspect(MANAGER_PATH))
        self.assertIn(MANAGER_IFACE, live)
        self.assertIn(OBJECT_MANAGER_IFACE, live, 'the ObjectManager lives at ' + MANAGER_PATH)
        self.assertEqual(set(live) - STANDARD, {MANAGER_IFACE})
        self.assertInterfaceMatches(live, MANAGER_IFACE)

    def test_execution_object(self):
        path = self.start(playbook(sleep_step('wait', 60)))
        self.client.wait_step(path, 'wait', 'running')
        live = interfaces(self.client.introspect(path))
        self.assertEqual(set(live) - STANDARD, {EXECUTION_IFACE})
        self.assertNotIn(MANAGER_IFACE, live)
        self.assertInterfaceMatches(live, EXECUTION_IFACE)

    def test_execution_is_a_child_node(self):
        path = self.start(playbook(sleep_step('wait', 60)))
        root = ET.fromstring(self.client.introspect(EXECUTION_PREFIX.rstrip('/')))
        children = {n.get('name') for n in root.findall('node')}
        self.assertIn(path[len(EXECUTION_PREFIX):], children)

    def test_property_values_have_the_contract_types(self):
        path = self.start(playbook(sleep_step('wait', 60)))
        self.client.wait_step(path, 'wait', 'running')
        for iface, obj in ((MANAGER_IFACE, MANAGER_PATH), (EXECUTION_IFACE, path)):
            want = describe_interface(self.contract[iface])['properties']
            raw = self.client.conn.call_sync(
                'org.ignition.Toolkit', obj, 'org.freedesktop.DBus.Properties', 'GetAll',
                GLib.Variant('(s)', (iface,)), None, 0, -1, None)
            values = raw.get_child_value(0)
            got = {}
            for i in range(values.n_children()):
                entry = values.get_child_value(i)
                got[entry.get_child_value(0).get_string()] = \
                    entry.get_child_value(1).get_variant().get_type_string()
            self.assertEqual(got, {name: d[0] for name, d in want.items()}, iface)

    def test_managed_objects_list_the_execution(self):
        path = self.start(playbook(sleep_step('wait', 60)))
        objects = self.client.call(MANAGER_PATH, 'GetManagedObjects',
                                   iface=OBJECT_MANAGER_IFACE)
        self.assertIn(path, objects)
        props = objects[path][EXECUTION_IFACE]
        self.assertEqual(props['Id'].replace('-', ''), path[len(EXECUTION_PREFIX):])
        self.assertEqual(props['TotalSteps'], 1)
        self.assertEqual(props['PlaybookName'], 'Integration test')


if __name__ == '__main__':
    main()
