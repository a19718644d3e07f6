#!/usr/bin/env python3
"""A stand-in for the exporter while developing the console: serves the built
bundle under /console/ and canned JSON under the API paths the pages call.

    python3 console/dev/stub_server.py build/test/console/dist 8099
    open http://127.0.0.1:8099/console/   (log in as admin, manager, support or user; password "pw")

Not a test of the backend: the shapes follow docs/ANALYTICS.md, INCIDENTS.md, NOTICES.md,
ONCALL.md and ACCESS.md, the numbers are made up.
"""
import datetime as dt
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

DIST = sys.argv[1] if len(sys.argv) > 1 else 'dist'
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8099
SESSIONS = {}
FAILURES = {'n': 0}
STATE = {'incident_status': 'triggered', 'notes': []}

def days(n=5):
    today = dt.date.today()
    return [(today - dt.timedelta(days=n - 1 - i)).isoformat() for i in range(n)]

def usage(ops, errs, users=3):
    return {'operations_total': ops, 'error_count': errs, 'error_rate': errs / ops if ops else 0,
            'unique_users': users, 'avg_response_time_ms': 120.5, 'p95_response_time_ms': 480.0}

def series():
    return [dict(usage(1000 + 10 * i, 5 + i), bucket=b) for i, b in enumerate(days())]

def period(q):
    return {'from': (q.get('from', ['2026-11-01'])[0]) + 'T00:00:00+03:00', 'to': q.get('to', ['2026-12-01'])[0] + 'T00:00:00+03:00',
            'granularity': q.get('granularity', ['day'])[0], 'time_zone': 'Europe/Moscow'}

CONNECTORS = [('crm-connector', 'CRM Connector', 234, 23456, 0.012), ('payment-connector', 'Payment Connector', 123, 12345, 0.034)]

def analytics(endpoint, q, role):
    if q.get('customer') and role == 'manager':
        return 403, {'error': 'forbidden', 'message': 'a manager may not read one customer', 'field': 'customer'}
    if endpoint == 'overview':
        b = {'active_users': 1234, 'active_subscriptions': 2345, 'operations_total': 123456, 'error_rate': 0.023,
             'revenue': None if role == 'support' else 1234567.89, 'revenue_minor': 123456789, 'currency': 'RUB',
             'revenue_by_currency': {'RUB': 1234567.89},
             'connectors': [{'id': i, 'name': n, 'active_subscriptions': s, 'operations_total': o, 'error_rate': e} for i, n, s, o, e in CONNECTORS],
             'timeseries': series()}
    elif endpoint == 'connectors' or endpoint.startswith('connectors/'):
        lst = []
        for i, n, s, o, e in CONNECTORS:
            c = dict(usage(o, int(o * e)), id=i, name=n, active_subscriptions=s,
                     operations=[dict(usage(o // 2, 3), operation='getContact', share=0.5), dict(usage(o - o // 2, 4), operation='createDeal', share=0.5)],
                     errors_by_type=[{'error_type': 'timeout', 'count': 7, 'share': 0.7}, {'error_type': 'auth', 'count': 3, 'share': 0.3}])
            lst.append(c)
        if endpoint.startswith('connectors/'):
            cid = endpoint.split('/', 1)[1]
            found = [c for c in lst if c['id'] == cid]
            if not found:
                return 404, {'error': 'not found', 'message': 'no such connector', 'field': 'id'}
            b = found[0]
            b['timeseries'] = series()
        else:
            b = {'connectors': lst}
    elif endpoint == 'users':
        if role == 'support':
            return 403, {'error': 'forbidden', 'message': "role 'support' may not read user statistics", 'field': ''}
        b = {'active_users': 321, 'active_users_series': [{'bucket': d, 'active_users': 100 + i} for i, d in enumerate(days())],
             'new_users_total': 42, 'new_users': [{'bucket': d, 'new_users': 5 + i} for i, d in enumerate(days())],
             'trial_conversion': {'trials_started': 10, 'converted': 4, 'rate': 0.4},
             'churn': {'active_at_start': 90, 'started': 10, 'cancelled': 5, 'rate': 0.05},
             'activity_distribution': [{'operations': k, 'accounts': v} for k, v in [('1', 10), ('2-10', 20), ('11-100', 30), ('101-1000', 5), ('>1000', 1)]],
             'top_accounts': [{'make_account_id': 'm_1234abcd', 'customer': 'c_99aa', 'operations': 5000}]}
    elif endpoint == 'financial':
        b = {'currency': 'RUB', 'revenue': 1234567.89, 'revenue_minor': 123456789, 'revenue_by_currency': {'RUB': 1234567.89},
             'revenue_series': [{'bucket': d, 'currency': 'RUB', 'revenue': 1000.5 * (i + 1), 'revenue_minor': 100050 * (i + 1)} for i, d in enumerate(days())],
             'revenue_by_connector': [{'connector': 'crm-connector', 'currency': 'RUB', 'revenue': 1000.0, 'revenue_minor': 100000, 'payments': 3}],
             'paying_customers': 12, 'arpu': 102880.66, 'ltv': None, 'ltv_formula': '...', 'churn_rate': 0,
             'failed_payments': {'count': 2, 'amount_minor': 5000, 'ratio': 0.1, 'by_reason': [{'reason': 'card_declined', 'count': 2, 'amount_minor': 5000}]}}
    elif endpoint == 'errors':
        b = {'errors_total': 77, 'operations_total': 1000, 'error_rate': 0.077,
             'errors_by_period': [{'bucket': d, 'errors': 10 + i, 'error_rate': 0.01 * i} for i, d in enumerate(days())],
             'errors_by_connector': [{'connector': 'crm-connector', 'errors': 50, 'error_rate': 0.05}],
             'errors_by_type': [{'error_type': 'timeout', 'errors': 40}],
             'most_frequent_errors': [{'connector': 'crm-connector', 'operation': 'getContact', 'error_type': 'timeout', 'errors': 30, 'last_message': None if role == 'manager' else 'upstream timed out after 30s'}],
             'trend': {'previous_errors_total': 70, 'previous_error_rate': 0.07, 'change': 0.1}}
    else:
        return 404, {'error': 'not found', 'message': 'no such endpoint', 'field': ''}
    b['as_of'] = dt.datetime.utcnow().isoformat() + 'Z'
    b['period'] = period(q)
    if q.get('customer'):
        b['customer'] = q['customer'][0]
    return 200, b

def incident(full):
    i = {'id': 7, 'group_key': 'am:{}:{alertname="HighErrorRate"}', 'title': 'HighErrorRate: crm-connector errors above 5%',
         'severity': 'critical', 'connector': 'crm-connector', 'status': STATE['incident_status'], 'muted': False,
         'escalation_policy': 'default', 'created_at': '2026-12-07T10:00:00.000000Z', 'acknowledged_at': None,
         'acknowledged_by': None, 'resolved_at': None, 'resolved_by': None, 'next_escalation_at': '2026-12-07T10:05:00.000000Z',
         'time_to_acknowledge_seconds': None, 'time_to_resolve_seconds': None, 'labels': {'connector': 'crm-connector', 'severity': 'critical'}}
    if full:
        i['alerts'] = [{'source': 'alertmanager', 'dedup_key': 'abc', 'status': 'firing', 'alertname': 'HighErrorRate', 'starts_at': '2026-12-07T09:59:00.000000Z'}]
        i['paged'] = [{'person': 'john', 'channel': 'ops-slack', 'destination': 'U024BE7LH', 'first_paged_at': '2026-12-07T10:00:01.000000Z'}]
        i['timeline'] = [{'at': '2026-12-07T10:00:00.000000Z', 'kind': 'detected', 'actor': '', 'channel': '', 'person': '', 'result': '', 'detail': ''}] + \
            [{'at': '2026-12-07T10:10:00.000000Z', 'kind': 'note', 'actor': 'admin', 'channel': '', 'person': '', 'result': '', 'detail': n} for n in STATE['notes']]
    return i

def oncall(q):
    at = q.get('at', [None])[0]
    now = dt.datetime.now(dt.timezone.utc) if not at else dt.datetime.fromisoformat(at.replace('Z', '+00:00'))
    start = now.replace(hour=6, minute=0, second=0, microsecond=0)
    if start > now:
        start -= dt.timedelta(days=1)
    end = start + dt.timedelta(days=1)
    who = ['john', 'jane'][start.toordinal() % 2]
    f = lambda t: t.strftime('%Y-%m-%dT%H:%M:%S.000000Z')
    sch = {'id': 'primary', 'name': 'Primary On-Call', 'time_zone': 'Europe/Moscow',
           'on_call': {'person': {'id': who, 'name': who.title()}, 'layer': 0, 'layer_name': 'days', 'override': False,
                       'start': f(start), 'end': f(end), 'start_local': f(start), 'end_local': f(end)}}
    return {'at': f(now), 'schedules': [sch]}

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def user(self):
        for part in (self.headers.get('Cookie') or '').split(';'):
            k, _, v = part.strip().partition('=')
            if k == 'bpmc_session' and v in SESSIONS:
                return SESSIONS[v]
        return None

    def send(self, status, body=None, headers=()):
        data = b'' if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header('Content-Type', 'application/json')
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return json.loads(self.rfile.read(n) or b'null')

    def do_GET(self):
        self.handle_any('GET')

    def do_POST(self):
        self.handle_any('POST')

    def handle_any(self, method):
        u = urlparse(self.path)
        q = parse_qs(u.query)
        p = u.path
        if p.startswith('/console/') and not p.startswith('/console/api/'):
            name = p[len('/console/'):] or 'index.html'
            path = os.path.join(DIST, name)
            if not os.path.isfile(path):
                return self.send(404, {'error': 'not found', 'message': 'no such file', 'field': ''})
            data = open(path, 'rb').read()
            ctype = {'html': 'text/html', 'js': 'text/javascript', 'css': 'text/css'}[name.rsplit('.', 1)[1]]
            self.send_response(200)
            self.send_header('Content-Type', ctype + '; charset=utf-8')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if p == '/console/api/login' and method == 'POST':
            b = self.body()
            if FAILURES['n'] >= 3 and time.time() - FAILURES.get('at', 0) > 5:
                FAILURES['n'] = 0
            if FAILURES['n'] >= 3:
                return self.send(429, {'error': 'too many', 'message': 'too many failed logins', 'field': 'name'}, [('Retry-After', '5')])
            if b.get('password') != 'pw' or b.get('name') not in ('admin', 'manager', 'support', 'user'):
                FAILURES['n'] += 1
                FAILURES['at'] = time.time()
                return self.send(401, {'error': 'unauthorized', 'message': 'wrong name or password', 'field': 'password'})
            FAILURES['n'] = 0
            user = {'name': b['name'], 'role': b['name'], 'customer': 'cust-A' if b['name'] == 'user' else None}
            sid = os.urandom(8).hex()
            SESSIONS[sid] = user
            return self.send(200, {'user': user, 'csrf_token': 'csrf-' + sid}, [('Set-Cookie', f'bpmc_session={sid}; HttpOnly; Path=/; SameSite=Strict')])
        user = self.user()
        if not user:
            return self.send(401, {'error': 'unauthorized', 'message': 'log in first', 'field': 'Authorization'})
        if method == 'POST' and self.headers.get('X-CSRF-Token') != 'csrf-' + [k for k, v in SESSIONS.items() if v is user][0]:
            return self.send(403, {'error': 'forbidden', 'message': 'missing or wrong CSRF token', 'field': 'X-CSRF-Token'})
        role = user['role']
        if p == '/console/api/session':
            return self.send(200, {'user': user, 'csrf_token': 'csrf-' + [k for k, v in SESSIONS.items() if v is user][0]})
        if p == '/console/api/logout':
            for k in [k for k, v in SESSIONS.items() if v is user]:
                del SESSIONS[k]
            return self.send(204)
        if p.startswith('/api/v1/analytics/'):
            if q.get('customer') and role == 'support' and not (self.headers.get('X-Access-Reason') or '').strip():
                return self.send(403, {'error': 'forbidden', 'message': 'support must give X-Access-Reason to read a customer', 'field': 'X-Access-Reason'})
            status, b = analytics(p[len('/api/v1/analytics/'):], q, role)
            if q.get('format'):
                self.send_response(200)
                self.send_header('Content-Type', 'text/csv')
                self.send_header('Content-Disposition', 'attachment; filename="report.csv"')
                self.end_headers()
                self.wfile.write(b'a,b\n1,2\n')
                return
            return self.send(status, b)
        if p == '/api/v1/audit':
            if role != 'admin':
                return self.send(403, {'error': 'forbidden', 'message': 'only admins read the audit log', 'field': ''})
            e = q.get('endpoint', [None])[0]
            rec = '/api/v1/analytics/connectors'
            if e is not None and not (rec.startswith(e[:-1]) if e.endswith('*') else rec == e):
                return self.send(200, {'records': []})
            return self.send(200, {'records': [{'id': 42, 'at': '2026-11-25T10:00:00.123456Z', 'user_id': 'x', 'user': 'meg', 'role': 'manager', 'method': 'GET',
                                                'endpoint': '/api/v1/analytics/connectors', 'params': {'from': '2026-11-01'}, 'ip': '10.0.0.7', 'reason': None,
                                                'allowed': True, 'status': 200, 'denial': None}]})
        if p.startswith('/receiver/api/v1/'):
            r = p[len('/receiver'):]
            staff = role in ('admin', 'manager', 'support')
            if r == '/api/v1/notices':
                if role not in ('admin', 'user'):
                    return self.send(403, {'error': 'forbidden', 'message': f'role {role} may not read notices', 'field': ''})
                n = {'id': 3, 'kind': 'maintenance_scheduled', 'connectors': ['crm-connector'], 'title': 'Planned maintenance of connector crm-connector',
                     'body': 'Planned maintenance from 01:00 to 03:00 UTC', 'created_at': '2026-12-06T10:00:00.000000Z'}
                if role == 'admin':
                    n['customer_id'] = 'cust-A'
                return self.send(200, {'notices': [n], 'next_before': None})
            if not staff:
                return self.send(403, {'error': 'forbidden', 'message': f"role '{role}' may not see incidents", 'field': ''})
            if r == '/api/v1/incidents':
                i = incident(False)
                keep = all(q.get(k, [i[k]])[0] == i[k] for k in ('connector', 'status'))
                return self.send(200, {'incidents': [i] if keep else []})
            if r.startswith('/api/v1/incidents/7'):
                action = r[len('/api/v1/incidents/7'):].strip('/')
                if not action:
                    return self.send(200, incident(True))
                if role == 'manager':
                    return self.send(403, {'error': 'forbidden', 'message': "role 'manager' may not change incidents", 'field': ''})
                if action == 'notes':
                    STATE['notes'].append(self.body()['text'])
                    return self.send(200, {'status': 'ok', 'id': 7, 'incident_status': 'noted'})
                new = {'ack': 'acknowledged', 'resolve': 'resolved', 'escalate': 'triggered'}[action]
                if STATE['incident_status'] == 'resolved' or (action == 'ack' and STATE['incident_status'] != 'triggered'):
                    return self.send(409, {'error': 'conflict', 'message': 'the incident is already acknowledged or resolved', 'field': '', 'id': 7})
                STATE['incident_status'] = new
                return self.send(200, {'status': 'ok', 'id': 7, 'incident_status': new})
            if r == '/api/v1/oncall':
                return self.send(200, oncall(q))
            if r == '/api/v1/oncall/policies':
                return self.send(200, {'policies': [
                    {'id': 'primary', 'name': 'Primary Escalation Policy', 'repeat': 1, 'ack_timeout_seconds': None, 'levels': [
                        {'level': 0, 'delay_seconds': 1800, 'targets': [{'type': 'schedule', 'id': 'primary', 'name': 'Primary On-Call'},
                                                                        {'type': 'channel', 'id': 'ops-slack', 'name': 'ops-slack'}]},
                        {'level': 1, 'delay_seconds': 1800, 'targets': [{'type': 'person', 'id': 'jane', 'name': 'Jane Smith'}]}]}]})
            if r == '/api/v1/overrides':
                return self.send(200, {'overrides': []})
            if r == '/api/v1/silences':
                return self.send(200, {'silences': []})
            if r == '/api/v1/maintenance':
                if method == 'POST':
                    if role != 'admin':
                        return self.send(403, {'error': 'forbidden', 'message': 'only an admin schedules maintenance', 'field': ''})
                    b = self.body()
                    if not b.get('connectors'):
                        return self.send(400, {'error': 'bad request', 'message': 'connectors: 1-100 ids', 'field': 'connectors'})
                    return self.send(201, {'status': 'ok', 'window': dict(b, id=5)})
                return self.send(200, {'status': 'ok', 'windows': [{'id': 4, 'connectors': ['crm-connector'], 'starts_at': '2026-12-08T01:00:00.000000Z',
                                                                    'ends_at': '2026-12-08T03:00:00.000000Z', 'message': 'Upgrade', 'created_by': 'admin',
                                                                    'created_at': '2026-12-07T10:00:00.000000Z', 'advance_noticed': True, 'end_noticed': False}]})
        return self.send(404, {'error': 'not found', 'message': 'no such endpoint', 'field': ''})

ThreadingHTTPServer(('127.0.0.1', PORT), Handler).serve_forever()
