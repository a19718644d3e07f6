#!/usr/bin/python3
"""The console in a real browser against the real servers.

Starts a private PostgreSQL 15 (initdb into a temporary directory, Unix socket only),
bpmc-receiver (incidents engine, one escalation policy) and bpmc-exporter (the console,
receiver_url pointing at that receiver), posts usage events for customers acme and globex
and a critical alert, then drives headless Chromium (Debian's chromium + chromedriver,
python3-selenium):

 1. login through the form as admin, manager, support and user (acme): the navigation shows
    exactly that role's pages (console/README.md);
 2. admin: every headline figure's data-value equals the analytics API's answer for the URL
    the page itself uses (its export link without `format`); overview's operations count
    equals the events posted;
 3. an incident is acknowledged by the button and the timeline gets the row;
 4. overview's CSV, XLSX and PDF exports download and parse;
 5. the customer sees acme only; fetches of globex's data, the audit log and the incidents
    from its page are refused (403); nothing of globex in any page it can reach;
 6. logout by the button ends the session (the old cookie gets 401);
 7. a cross-origin page POSTing to logout and to an incident's resolve without the CSRF
    token changes nothing;
 8. axe-core on every page visited: no serious or critical violation.

Screenshots of every page: $BPMC_ARTIFACTS/<role>-<page>.png. Environment: BPMC_BIN_DIR
(bpmc-exporter, bpmc-receiver), BPMC_SOURCE_DIR, BPMC_ARTIFACTS (default: a temp dir).
Run with /usr/bin/python3 (Debian's selenium and openpyxl), not a pyenv python.
"""
import csv
import glob
import http.server as http_server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.support.ui import Select
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

T0 = time.monotonic()
TOTAL_TIMEOUT = 540  # seconds; ctest's TIMEOUT is 600
BIN = os.environ.get('BPMC_BIN_DIR', '')
SRC = os.environ.get('BPMC_SOURCE_DIR', os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')))
ART = os.environ.get('BPMC_ARTIFACTS') or tempfile.mkdtemp(prefix='bpmc-console-artifacts-')
PG_BIN = '/usr/lib/postgresql/15/bin'
PASSWORD = 'password123'
RECEIVER_TOKEN = 'browser-test-receiver-token-0123456789'

# console/README.md "Pages by role" (and main.js ROUTES).
NAV = {
    'admin': {'overview', 'connectors', 'users', 'financial', 'errors', 'incidents', 'oncall', 'maintenance', 'audit'},
    'manager': {'overview', 'connectors', 'users', 'financial', 'errors', 'incidents', 'oncall', 'maintenance'},
    'support': {'overview', 'connectors', 'errors', 'incidents', 'oncall', 'maintenance'},
    'user': {'my'},
}

# Headline figure -> path in the analytics answer (analytics_pages.js).
FIGURES = {
    'overview': {
        'overview-active-users': ['active_users'],
        'overview-active-subscriptions': ['active_subscriptions'],
        'overview-operations': ['operations_total'],
        'overview-error-rate': ['error_rate'],
        'overview-revenue': ['revenue'],
    },
    'users': {
        'users-active': ['active_users'],
        'users-new': ['new_users_total'],
        'users-trial-conversion': ['trial_conversion', 'rate'],
        'users-churn': ['churn', 'rate'],
    },
    'financial': {
        'financial-revenue': ['revenue'],
        'financial-arpu': ['arpu'],
        'financial-ltv': ['ltv'],
        'financial-paying-customers': ['paying_customers'],
        'financial-failed-count': ['failed_payments', 'count'],
        'financial-failed-amount': ['failed_payments', 'amount_minor'],
        'financial-failed-ratio': ['failed_payments', 'ratio'],
    },
    'errors': {
        'errors-total': ['errors_total'],
        'errors-rate': ['error_rate'],
        'errors-previous-total': ['trend', 'previous_errors_total'],
        'errors-change': ['trend', 'change'],
    },
    'connectors/crm-connector': {
        'connector-subscriptions': ['active_subscriptions'],
        'connector-operations': ['operations_total'],
        'connector-errors': ['error_count'],
        'connector-error-rate': ['error_rate'],
        'connector-unique-users': ['unique_users'],
        'connector-avg-time': ['avg_response_time_ms'],
        'connector-p95-time': ['p95_response_time_ms'],
    },
    'my': {
        'my-active-users': ['active_users'],
        'my-active-subscriptions': ['active_subscriptions'],
        'my-operations': ['operations_total'],
        'my-error-rate': ['error_rate'],
        'my-revenue': ['revenue'],
    },
}

# The events posted: (customer, connector, operation, make account, status, error_type).
ACME_EVENTS = (
    [('acme', 'crm-connector', 'getContact', f'acme-acct-{i % 3}', 'success', None) for i in range(8)]
    + [('acme', 'crm-connector', 'createDeal', 'acme-acct-1', 'success', None)] * 2
    + [('acme', 'crm-connector', 'getContact', 'acme-acct-2', 'error', 'timeout')] * 2
    + [('acme', 'erp-connector', 'listInvoices', 'acme-acct-0', 'error', 'rate_limited')]
)
GLOBEX_EVENTS = (
    [('globex', 'erp-connector', 'syncGlobexLedger', f'globex-acct-{i}', 'success', None) for i in range(4)]
    + [('globex', 'erp-connector', 'syncGlobexLedger', 'globex-acct-9', 'error', 'globex_quota')]
)
GLOBEX_MARKERS = ['globex', 'syncGlobexLedger', 'globex-acct', 'globex_quota', 'globex-sub']

results = []  # (ok, what)
procs = []
cleanup_dirs = []


class Fatal(Exception):
    pass


def remaining():
    r = TOTAL_TIMEOUT - (time.monotonic() - T0)
    if r <= 0:
        raise Fatal(f'total timeout of {TOTAL_TIMEOUT}s exceeded')
    return r


def check(cond, what):
    results.append((bool(cond), what))
    print(('ok   ' if cond else 'FAIL ') + what, flush=True)
    return bool(cond)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_until(fn, timeout, what, interval=0.2):
    end = time.monotonic() + min(timeout, remaining())
    last = None
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last = e
        time.sleep(interval)
    raise Fatal(f'timed out waiting for {what}' + (f' (last error: {last!r})' if last else ''))


# --- HTTP from python -----------------------------------------------------------------

def http(method, url, body=None, headers=None, timeout=15):
    data = None
    h = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.setdefault('Content-Type', 'application/json')
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def http_json(method, url, body=None, headers=None):
    st, raw, hd = http(method, url, body, headers)
    try:
        return st, json.loads(raw) if raw else None, hd
    except ValueError:
        return st, raw, hd


# --- the servers ----------------------------------------------------------------------

def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=min(120, remaining()), **kw)
    if r.returncode != 0:
        raise Fatal(f'{" ".join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}')
    return r.stdout


def as_pg(cmd):
    return (['runuser', '-u', 'postgres', '--'] + cmd) if os.geteuid() == 0 else cmd


class Postgres:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='bpmc-browser-pg-', dir='/tmp')
        cleanup_dirs.append(self.dir)
        self.port = free_port()
        self.started = False

    def start(self):
        if os.geteuid() == 0:
            shutil.chown(self.dir, 'postgres', 'postgres')
        data = os.path.join(self.dir, 'data')
        run(as_pg([f'{PG_BIN}/initdb', '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']), cwd=self.dir)
        opts = f"-k '{self.dir}' -c listen_addresses='' -p {self.port} -c fsync=off"
        run(as_pg([f'{PG_BIN}/pg_ctl', '-D', data, '-l', os.path.join(self.dir, 'log'), '-w', '-t', '60', '-o', opts, 'start']), cwd=self.dir)
        self.started = True
        run(as_pg([f'{PG_BIN}/psql', '-h', self.dir, '-p', str(self.port), '-U', 'postgres', '-X', '-q', '-d', 'postgres', '-c', 'CREATE DATABASE bpmc']), cwd=self.dir)
        return f'postgresql://postgres@/bpmc?host={urllib.parse.quote(self.dir, safe="")}&port={self.port}'

    def stop(self):
        if self.started:
            subprocess.run(as_pg([f'{PG_BIN}/pg_ctl', '-D', os.path.join(self.dir, 'data'), '-m', 'immediate', '-w', 'stop']),
                           cwd=self.dir, capture_output=True, timeout=60)
            self.started = False


def spawn(name, cmd, env_extra, workdir):
    log = open(os.path.join(workdir, f'{name}.log'), 'wb')
    env = dict(os.environ)
    env.update(env_extra)
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    p.log_path = log.name
    p.name = name
    procs.append(p)
    return p


def wait_ready(p, url):
    def ready():
        if p.poll() is not None:
            raise Fatal(f'{p.name} exited with {p.returncode}:\n' + open(p.log_path, errors='replace').read()[-4000:])
        return http('GET', url, timeout=2)[0] == 200
    try:
        wait_until(ready, 60, f'{p.name} ready at {url}')
    except Fatal as e:
        if 'exited' in str(e):
            raise
        raise Fatal(f'{e}\n' + open(p.log_path, errors='replace').read()[-4000:])


class Hook(http_server.BaseHTTPRequestHandler):
    """The cross-site pages (GET /evil-*) and a Slack stand-in (POST anything -> 200 ok)."""
    pages = {}

    def do_GET(self):
        body = self.pages.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header('Content-Type', 'text/html; charset=utf-8')
        self.end_headers()
        self.wfile.write(body.encode())

    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.end_headers()
        self.wfile.write(b'ok')

    def log_message(self, *a):
        pass


# --- the browser ----------------------------------------------------------------------

class Browser:
    def __init__(self, base, downloads):
        self.base = base
        self.downloads = downloads
        # The page's default period is in the browser's local dates; the exporter reports in
        # UTC: a UTC browser keeps "now" inside the period whatever the machine's zone.
        os.environ['TZ'] = 'UTC'
        opts = webdriver.ChromeOptions()
        for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--window-size=1280,900', '--lang=ru'):
            opts.add_argument(a)
        opts.add_experimental_option('prefs', {
            'download.default_directory': downloads,
            'download.prompt_for_download': False,
            'safebrowsing.enabled': False,
        })
        opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
        if os.path.exists('/usr/bin/chromium'):
            opts.binary_location = '/usr/bin/chromium'
        service = ChromeService(executable_path='/usr/bin/chromedriver') if os.path.exists('/usr/bin/chromedriver') else None
        self.d = webdriver.Chrome(options=opts, service=service) if service else webdriver.Chrome(options=opts)
        self.d.set_page_load_timeout(30)
        self.d.set_script_timeout(30)
        try:
            self.d.execute_cdp_cmd('Page.setDownloadBehavior', {'behavior': 'allow', 'downloadPath': downloads})
        except Exception:  # noqa: BLE001 - prefs alone work in newer chromium
            pass
        self.axe = None
        for p in (os.path.join(SRC, 'console/node_modules/axe-core/axe.min.js'),
                  *glob.glob(os.path.join(BIN, '..', 'console/npm/node_modules/axe-core/axe.min.js')),
                  '/usr/share/nodejs/axe-core/axe.min.js'):
            if os.path.exists(p):
                self.axe = open(p).read()
                break

    def wait(self, cond, timeout=15, what=''):
        try:
            return WebDriverWait(self.d, min(timeout, remaining()), poll_frequency=0.1,
                                 ignored_exceptions=[StaleElementReferenceException]).until(lambda d: cond(d))
        except TimeoutException:
            raise Fatal(f'browser: timed out waiting for {what} at {self.d.current_url}')

    def by_testid(self, testid):
        return self.d.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')

    def wait_testid(self, testid, timeout=15):
        return self.wait(lambda d: (self.by_testid(testid) or [None])[0], timeout, f'[data-testid="{testid}"]')

    def wait_page_loaded(self, timeout=20):
        """An h1 in <main> and no loading indicator anywhere in it."""
        self.wait(lambda d: d.execute_script(
            "const m = document.getElementById('main');"
            "return !!(m && m.querySelector('h1') && !m.querySelector('.loading'));"), timeout, 'the page to load')

    def open(self, hash_):
        self.d.get(self.base + '#/' + hash_)
        self.wait_page_loaded()

    def alerts(self):
        """The error messages shown (data-testid=alert); a success notice is not one."""
        els = self.d.find_elements(By.CSS_SELECTOR, '[data-testid="alert"], #main .alert.error')
        return ' | '.join(e.text.strip() for e in els)

    def nav(self):
        return {e.get_attribute('data-testid')[4:] for e in self.d.find_elements(By.CSS_SELECTOR, '[data-testid^="nav-"]')}

    def shot(self, role, page):
        name = f'{role}-{page.replace("/", "_").replace("?", "_")}.png'
        path = os.path.join(ART, name)
        # The whole page: the window as tall as the document (at most 5000 px), then back.
        height = self.d.execute_script('return document.documentElement.scrollHeight')
        self.d.set_window_size(1280, max(900, min(int(height or 900), 5000)))
        self.d.save_screenshot(path)
        self.d.set_window_size(1280, 900)
        return name

    def run_axe(self, label):
        if not self.axe:
            return check(False, f'{label}: axe-core not found')
        self.d.execute_script(self.axe)
        res = self.d.execute_async_script(
            'const cb = arguments[arguments.length - 1];'
            'axe.run(document).then(r => cb(r.violations.map(v => ({id: v.id, impact: v.impact, n: v.nodes.length,'
            ' target: v.nodes[0] ? v.nodes[0].target.join(" ") : ""}))), e => cb([{id: "axe-error", impact: "critical", n: 0, target: String(e)}]));')
        bad = [v for v in res if v['impact'] in ('serious', 'critical')]
        return check(not bad, f'{label}: axe-core, no serious/critical violation'
                     + (': ' + '; '.join(f'{v["id"]} ({v["impact"]}) x{v["n"]} {v["target"]}' for v in bad) if bad else
                        f' ({len(res)} minor/moderate)' if res else ''))

    def fetch_status(self, url, method='GET'):
        return self.d.execute_async_script(
            'const cb = arguments[arguments.length - 1];'
            'fetch(arguments[0], {method: arguments[1], credentials: "same-origin", headers: {Accept: "application/json"}})'
            '.then(async r => cb({status: r.status, body: (await r.text()).slice(0, 2000)}), e => cb({status: 0, body: String(e)}));',
            url, method)

    def login(self, name, keyboard=False):
        self.d.get(self.base + '#/login')
        self.wait_testid('login-form')
        self.wait_testid('login-name').clear()
        if keyboard:  # the keyboard alone: type, Tab to the password, Enter submits
            self.wait_testid('login-name').send_keys(name + Keys.TAB)
            self.d.switch_to.active_element.send_keys(PASSWORD + Keys.ENTER)
        else:
            self.wait_testid('login-name').send_keys(name)
            self.wait_testid('login-password').send_keys(PASSWORD)
            self.wait_testid('login-submit').click()
        who = self.wait_testid('whoami')
        self.wait_page_loaded()
        return who.get_attribute('data-role')

    def logout(self):
        self.wait_testid('logout').click()
        self.wait_testid('login-form')

    def cookie(self):
        c = self.d.get_cookie('bpmc_session')
        return c['value'] if c else None

    def quit(self):
        try:
            self.d.quit()
        except Exception:  # noqa: BLE001
            pass


def dig(obj, path):
    for k in path:
        obj = obj.get(k) if isinstance(obj, dict) else None
    return obj


def same(page_value, api_value):
    """data-value is String(v) / JSON of the API value: compare as JSON values."""
    try:
        v = json.loads(page_value)
    except (TypeError, ValueError):
        v = page_value
    if isinstance(v, (int, float)) and isinstance(api_value, (int, float)) and not isinstance(v, bool):
        return v == api_value or abs(v - api_value) <= 1e-12 * max(1, abs(api_value))
    return v == api_value


def main():
    if not BIN or not os.path.exists(os.path.join(BIN, 'bpmc-exporter')):
        print('BPMC_BIN_DIR must hold bpmc-exporter and bpmc-receiver', file=sys.stderr)
        return 2
    os.makedirs(ART, exist_ok=True)
    for f in glob.glob(os.path.join(ART, '*')):
        if os.path.isfile(f):
            os.remove(f)
    work = tempfile.mkdtemp(prefix='bpmc-browser-')
    cleanup_dirs.append(work)
    downloads = os.path.join(work, 'downloads')
    os.makedirs(downloads)
    exporter_bin = os.path.join(BIN, 'bpmc-exporter')
    receiver_bin = os.path.join(BIN, 'bpmc-receiver')

    pg = Postgres()
    hook_srv = None
    browser = None
    try:
        db = pg.start()
        print(f'postgres on {pg.dir} port {pg.port}', flush=True)
        ex = lambda *a, **kw: run([exporter_bin, *a], **kw)  # noqa: E731
        ex('migrate', '--database-url', db)
        ex('connector', 'add', '--database-url', db, 'crm-connector', 'CRM Connector')
        ex('connector', 'add', '--database-url', db, 'erp-connector', 'ERP Connector')
        keys = {c: ex('api-key', 'create', '--database-url', db, c).strip().splitlines()[-1].strip() for c in ('acme', 'globex')}
        users = {'admin': ['--role', 'admin'], 'manager': ['--role', 'manager'], 'support': ['--role', 'support'],
                 'acme-user': ['--role', 'user', '--customer', 'acme']}
        for name, args in users.items():
            ex('user', 'add', '--database-url', db, name, *args)
            ex('user', 'set-password', '--database-url', db, name, input=PASSWORD + '\n')

        # Cross-site pages and the Slack stand-in on another port.
        hook_port = free_port()
        hook_srv = http_server.ThreadingHTTPServer(('127.0.0.1', hook_port), Hook)
        threading.Thread(target=hook_srv.serve_forever, daemon=True).start()

        rport, eport = free_port(), free_port()
        with open(os.path.join(work, 'receiver.yaml'), 'w') as f:
            f.write(f'''auth:
  bearer_tokens:
    - token_env: BPMC_TEST_RECEIVER_TOKEN
channels:
  ops-slack: {{type: slack, url: "http://127.0.0.1:{hook_port}/hook", rate_limit: none}}
routes:
  - match: {{severity: critical}}
    escalation_policy: primary
people:
  alice:
    contact_methods: [{{type: slack, channel: ops-slack}}]
escalation_policies:
  primary:
    levels:
      - {{delay: 30m, targets: [{{person: alice}}]}}
schedules:
  primary:
    time_zone: UTC
    layers: [{{rotation: daily, handoff: "09:00", start: 2026-01-05, participants: [alice]}}]
notices:
  poll_interval: 1s
incidents:
  ack_link_secret_env: BPMC_TEST_ACK_SECRET
  poll_interval: 200ms
  public_url: http://127.0.0.1:{rport}
''')
        with open(os.path.join(work, 'exporter.yaml'), 'w') as f:
            f.write(f'''receiver_url: http://127.0.0.1:{rport}
reporting_time_zone: UTC
rollup_interval_ms: 1000
analytics_requests_per_minute: 100000
analytics_burst: 10000
analytics_cache_ms: 0
''')
        receiver = spawn('receiver', [receiver_bin, 'serve', '--config', os.path.join(work, 'receiver.yaml'),
                                      '--listen', f'127.0.0.1:{rport}', '--database-url', db],
                         {'BPMC_TEST_RECEIVER_TOKEN': RECEIVER_TOKEN,
                          'BPMC_TEST_ACK_SECRET': 'browser-test-ack-secret-0123456789abcdef'}, work)
        wait_ready(receiver, f'http://127.0.0.1:{rport}/readyz')
        exporter = spawn('exporter', [exporter_bin, 'serve', '--config', os.path.join(work, 'exporter.yaml'),
                                      '--listen', f'127.0.0.1:{eport}', '--database-url', db,
                                      '--data-dir', os.path.join(work, 'exporter-data')],
                         {'BPMC_PSEUDONYM_KEY': 'YnJvd3Nlci10ZXN0LXBzZXVkb255bS1rZXktMDEyMzQ1Njc='}, work)
        E = f'http://127.0.0.1:{eport}'
        wait_ready(exporter, f'{E}/readyz')
        print(f'exporter {E}, receiver :{rport}, cross-site/slack :{hook_port}', flush=True)

        # --- data ---------------------------------------------------------------------
        now = datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
        for cust, con, op, acct, st, et in ACME_EVENTS + GLOBEX_EVENTS:
            body = {'connector': con, 'operation': op, 'make_account_id': acct, 'timestamp': now,
                    'status': st, 'duration_ms': 120}
            if et:
                body['error_type'] = et
                body['error_message'] = f'{et} while {op}'
            s, b, _ = http_json('POST', f'{E}/v1/connector/usage', body, {'Authorization': f'Bearer {keys[cust]}'})
            if s != 201:
                raise Fatal(f'usage event refused: {s} {b}')
        total = len(ACME_EVENTS) + len(GLOBEX_EVENTS)

        # Billing (docs/BILLING.md): a paid subscription each, and a failed payment of globex.
        ptoken = ex('platform-token', 'create', '--database-url', db, 'platform').strip().splitlines()[-1].strip()
        money = lambda m: {'amount_minor': m, 'currency': 'RUB'}  # noqa: E731
        import uuid
        billing = []
        for cust, con, sub, price, failed in (('acme', 'crm-connector', 'acme-sub-1', 150000, False),
                                              ('globex', 'erp-connector', 'globex-sub-1', 90000, True)):
            billing.append({'event_id': str(uuid.uuid4()), 'type': 'subscription_started', 'occurred_at': now, 'customer': cust,
                            'subscription_id': sub, 'connector': con, 'plan': 'pro', 'trial': False, 'price': money(price)})
            billing.append({'event_id': str(uuid.uuid4()), 'type': 'payment_succeeded', 'occurred_at': now, 'customer': cust,
                            'subscription_id': sub, 'payment_id': f'{sub}-p1', 'connector': con, 'amount': money(price)})
            if failed:
                billing.append({'event_id': str(uuid.uuid4()), 'type': 'payment_failed', 'occurred_at': now, 'customer': cust,
                                'subscription_id': sub, 'payment_id': f'{sub}-p2', 'connector': con, 'amount': money(price),
                                'reason': 'card_declined'})
        s, b, _ = http_json('POST', f'{E}/v1/billing/events', billing, {'Authorization': f'Bearer {ptoken}'})
        if s != 201:
            raise Fatal(f'billing events refused: {s} {b}')

        s, b, hd = http_json('POST', f'{E}/console/api/login', {'name': 'admin', 'password': PASSWORD})
        if s != 200:
            raise Fatal(f'admin login via API: {s} {b}')
        admin_cookie = {'Cookie': hd['Set-Cookie'].split(';')[0]}

        def caught_up():
            s, b, _ = http_json('GET', f'{E}/api/v1/analytics/overview', headers=admin_cookie)
            return s == 200 and b.get('operations_total') == total
        wait_until(caught_up, 60, f'the aggregates to count {total} operations', interval=0.5)

        def paid():
            s, b, _ = http_json('GET', f'{E}/api/v1/analytics/financial', headers=admin_cookie)
            return s == 200 and b.get('paying_customers') == 2 and (b.get('failed_payments') or {}).get('count') == 1
        wait_until(paid, 60, 'the financial analytics to show 2 paying customers and 1 failed payment', interval=0.5)

        # A critical alert opens an incident.
        s, b, _ = http_json('POST', f'http://127.0.0.1:{rport}/v1/generic',
                            {'summary': 'CRM connector down', 'severity': 'critical', 'source': 'browser-test',
                             'dedup_key': 'browser/crm', 'labels': {'connector': 'crm-connector'}},
                            {'Authorization': f'Bearer {RECEIVER_TOKEN}'})
        if s >= 300:
            raise Fatal(f'generic webhook: {s} {b}')

        def incident():
            s, b, _ = http_json('GET', f'{E}/receiver/api/v1/incidents', headers=admin_cookie)
            return s == 200 and b.get('incidents') and b['incidents'][0]['id']
        inc_id = wait_until(incident, 30, 'an incident from the alert', interval=0.3)
        print(f'incident {inc_id}', flush=True)

        # --- the browser ---------------------------------------------------------------
        browser = Browser(f'{E}/console/', downloads)
        check(browser.axe is not None, 'axe-core found')
        B = browser
        shots = []

        def visit(role, page, expect=None):
            B.open(page)
            for tid in expect or []:
                B.wait_testid(tid)
            check(B.alerts() == '', f'{role} #{page}: no error shown' + (f' (got {B.alerts()!r})' if B.alerts() else ''))
            shots.append(B.shot(role, page))
            B.run_axe(f'{role} #{page}')
            # Works offline: every resource the page loaded came from this origin.
            foreign = B.d.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)"
                ".filter(u => !u.startsWith(location.origin));")
            check(not foreign, f'{role} #{page}: nothing loaded from another origin ({foreign})')
            # A JavaScript value printed as text ("null", "undefined", "NaN") is a bug.
            stray = B.d.execute_script(
                "const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); let n, out = [];"
                "while ((n = w.nextNode())) if (/^(null|undefined|NaN|\\[object Object\\])$/.test(n.nodeValue.trim()))"
                " out.push(n.nodeValue.trim()); return out;")
            check(not stray, f'{role} #{page}: no stray JavaScript values in the text ({stray})')

        EXPECT = {
            'overview': ['overview-operations'], 'connectors': ['row-connectors-crm-connector'],
            'connectors/crm-connector': ['connector-operations'], 'users': ['users-active'],
            'financial': ['financial-revenue'], 'errors': ['errors-total'],
            'incidents': [f'row-incidents-{inc_id}'], f'incidents/{inc_id}': ['incident-status'],
            'oncall': ['row-oncall-primary'], 'maintenance': [], 'audit': [], 'my': ['my-operations', 'row-my-operations-crm-connector|getContact', 'my-errors-total'],
        }

        def compare(role, page):
            """The page's headline figures against the API's answer for the page's own URL."""
            href = B.wait_testid('export-csv').get_attribute('href')
            u = urllib.parse.urlsplit(href)
            q = [(k, v) for k, v in urllib.parse.parse_qsl(u.query) if k != 'format']
            api_url = f'{E}{u.path}?{urllib.parse.urlencode(q)}'
            s, ans, _ = http_json('GET', api_url, headers={'Cookie': f'bpmc_session={B.cookie()}'})
            if not check(s == 200, f'{role} {page}: API {u.path}?{urllib.parse.urlencode(q)} answers 200 ({s})'):
                return None
            period = B.wait_testid('period')
            check(period.get_attribute('data-from') == ans.get('from', period.get_attribute('data-from')),
                  f'{role} {page}: the period shown is the API\'s ({period.get_attribute("data-from")})')
            for tid, path in FIGURES.get(page, {}).items():
                pv = B.wait_testid(tid).get_attribute('data-value')
                check(same(pv, dig(ans, path)), f'{role} {page}: {tid} data-value {pv} == API {".".join(path)} {json.dumps(dig(ans, path))}')
            return ans

        # 1 + 8: every role logs in through the form, sees its navigation, every page gets axe.
        for role, login, pages in (
            ('manager', 'manager', ['overview', 'connectors', 'users', 'financial', 'errors', 'incidents', 'oncall', 'maintenance']),
            ('support', 'support', ['overview', 'connectors', 'errors', 'incidents', f'incidents/{inc_id}', 'oncall', 'maintenance']),
        ):
            check(B.login(login) == role, f'{role}: logged in through the form')
            check(B.nav() == NAV[role], f'{role}: navigation {sorted(B.nav())} == {sorted(NAV[role])}')
            for p in pages:
                visit(role, p, EXPECT.get(p))
                if p in FIGURES:  # support's pages too (pseudonymised, no customer named)
                    compare(role, p)
            B.logout()
            if role == 'manager':
                check(B.alerts() == '', 'login page: no error shown')
                shots.append(B.shot('anonymous', 'login'))
                B.run_axe('#login')

        # 2: admin's figures equal the API's.
        check(B.login('admin', keyboard=True) == 'admin', 'admin: logged in through the form with the keyboard alone')
        check(B.nav() == NAV['admin'], f'admin: navigation {sorted(B.nav())} == {sorted(NAV["admin"])}')
        for page in ('overview', 'connectors', 'connectors/crm-connector', 'users', 'financial', 'errors'):
            visit('admin', page, EXPECT.get(page))
            ans = compare('admin', page)
            if ans is None:
                continue
            if page == 'overview':
                pv = B.wait_testid('overview-operations').get_attribute('data-value')
                check(pv == str(total), f'admin overview: operations {pv} == events posted {total}')
                check(len(B.by_testid('row-overview-connectors-crm-connector')) == 1, 'admin overview: crm-connector row')
            if page == 'connectors':
                rows = {e.get_attribute('data-testid') for e in B.d.find_elements(By.CSS_SELECTOR, '[data-testid^="row-connectors-"]')}
                check(rows == {'row-connectors-crm-connector', 'row-connectors-erp-connector'}, f'admin connectors: rows {sorted(rows)}')
            if page == 'financial':
                pv = B.wait_testid('financial-revenue').get_attribute('data-value')
                check(same(pv, 2400), f'admin financial: revenue {pv} == the payments posted (1500 + 900 RUB)')
                # Money per locale: Russian by default, English after the switch, and back.
                norm = lambda s: s.replace('\u00a0', ' ').replace('\u202f', ' ').strip()  # noqa: E731
                text = norm(B.wait_testid('financial-revenue').text)
                check(text == '2 400,00 ₽', f'admin financial (ru): revenue shown as {text!r} == "2 400,00 ₽"')
                check(B.d.execute_script('return document.documentElement.lang') == 'ru', 'the page is lang=ru by default')
                Select(B.wait_testid('lang')).select_by_value('en')
                WebDriverWait(B.d, 20).until(lambda d: d.find_element(By.TAG_NAME, 'h1').text == 'Financial')
                text = norm(B.wait_testid('financial-revenue').text)
                check(text in ('RUB 2,400.00', '₽2,400.00'), f'admin financial (en): revenue shown as {text!r}')
                check(B.d.execute_script('return document.documentElement.lang') == 'en', 'lang=en after the switch')
                Select(B.wait_testid('lang')).select_by_value('ru')
                WebDriverWait(B.d, 20).until(lambda d: d.find_element(By.TAG_NAME, 'h1').text == 'Финансы')
                check(norm(B.wait_testid('financial-revenue').text) == '2 400,00 ₽', 'admin financial: back in Russian')
                check(len(B.by_testid('row-financial-failed-card_declined')) == 1, 'admin financial: the card_declined row')
            if page == 'errors':
                check(ans.get('errors_total') == sum(1 for e in ACME_EVENTS + GLOBEX_EVENTS if e[4] == 'error'),
                      f'admin errors: API errors_total {ans.get("errors_total")} == error events posted')
        for p in ('connectors/crm-connector', 'oncall', 'maintenance', 'audit'):
            visit('admin', p, EXPECT.get(p))

        # Maintenance (docs/NOTICES.md): schedule a window of crm-connector (acme subscribes to
        # it) in the form, wait for the advance notice, edit it with Edit, then Cancel it; acme
        # is told each time, in Russian, naming the connector by its display name, Moscow time.
        R = f'{E}/receiver/api/v1'
        win_cookie = {'Cookie': f'bpmc_session={B.cookie()}'}
        B.open('maintenance')
        t0 = datetime.now(timezone.utc) + timedelta(hours=2)
        local = lambda d: d.strftime('%Y-%m-%dT%H:%M')  # noqa: E731 - the browser runs in UTC
        set_value = 'arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event("input"));'
        form = B.wait_testid('maintenance-form')
        form.find_element(By.NAME, 'connectors').send_keys('crm-connector')
        B.d.execute_script(set_value, form.find_element(By.NAME, 'starts_at'), local(t0))
        B.d.execute_script(set_value, form.find_element(By.NAME, 'ends_at'), local(t0 + timedelta(hours=2)))
        form.find_element(By.NAME, 'message').send_keys('Обновление базы данных')
        B.wait_testid('maintenance-submit').click()

        def windows():
            s, b, _ = http_json('GET', f'{R}/maintenance', headers=win_cookie)
            return (b or {}).get('windows', []) if s == 200 else []
        win = wait_until(lambda: next((w for w in windows() if w.get('message') == 'Обновление базы данных'), None),
                         15, 'the window scheduled in the form')
        wid = win['id']
        the_window = lambda: next((w for w in windows() if w.get('id') == wid), None)  # noqa: E731
        wait_until(lambda: (the_window() or {}).get('advance_noticed'), 20, 'the advance notice of the window')
        B.open('maintenance')
        B.wait_testid(f'maintenance-edit-{wid}').click()
        edit = B.wait_testid('maintenance-edit-form')
        msg = edit.find_element(By.NAME, 'message')
        msg.clear()
        msg.send_keys('Обновление базы данных, на час дольше')
        B.d.execute_script(set_value, edit.find_element(By.NAME, 'ends_at'), local(t0 + timedelta(hours=3)))
        B.wait_testid('maintenance-save').click()
        B.wait(lambda d: (the_window() or {}).get('revision') == 1 or None, 15, 'the edit to be stored')
        w = the_window() or {}
        check(w.get('message') == 'Обновление базы данных, на час дольше' and w.get('updated_by') == 'admin'
              and w.get('ends_at', '').startswith(local(t0 + timedelta(hours=3))),
              f'admin maintenance: Edit stored the new message and end ({w.get("message")!r}, {w.get("ends_at")})')
        B.wait_testid(f'row-maintenance-{wid}')
        check(B.alerts() == '', f'admin maintenance: no error after the edit ({B.alerts()!r})')
        shots.append(B.shot('admin', 'maintenance-edited'))

        def acme_kinds():
            s, b, _ = http_json('GET', f'{R}/notices?customer=acme&limit=50', headers=win_cookie)
            return [n for n in (b or {}).get('notices', []) if str(n.get('kind', '')).startswith('maintenance')] if s == 200 else []
        changed = wait_until(lambda: [n for n in acme_kinds() if n['kind'] == 'maintenance_changed'], 20,
                             'acme told of the change')
        body = changed[0]['body']
        check('CRM Connector' in changed[0]['title'] and '(MSK)' in body and 'на час дольше' in body,
              f'acme: the change notice in Russian names "CRM Connector" in Moscow time ({changed[0]["title"]!r}, {body!r})')
        B.wait_testid(f'maintenance-cancel-{wid}').click()
        WebDriverWait(B.d, 10).until(EC.alert_is_present())
        B.d.switch_to.alert.accept()
        B.wait(lambda d: (the_window() or {}).get('cancelled') or None, 15, 'the cancellation to be stored')
        B.wait(lambda d: not B.by_testid(f'maintenance-cancel-{wid}') or None, 15, 'no Cancel button on a cancelled window')
        state = B.wait_testid(f'row-maintenance-{wid}').find_element(By.CSS_SELECTOR, '[data-field="state"]').get_attribute('data-value')
        check(state == 'cancelled', f'admin maintenance: the row shows the window cancelled ({state!r})')
        cancelled = wait_until(lambda: [n for n in acme_kinds() if n['kind'] == 'maintenance_cancelled'], 20,
                               'acme told of the cancellation')
        check('CRM Connector' in cancelled[0]['title'] and 'отменены' in cancelled[0]['body'],
              f'acme: the cancellation notice in Russian ({cancelled[0]["title"]!r})')
        check(B.alerts() == '', f'admin maintenance: no error after the cancellation ({B.alerts()!r})')
        shots.append(B.shot('admin', 'maintenance-cancelled'))

        # The connector page asks for its own open incidents, the on-call page shows the
        # escalation policy, the audit page's endpoint filter is the server's.
        B.open('connectors/crm-connector')
        B.wait_testid(f'row-connector-incidents-{inc_id}')
        B.open('connectors/erp-connector')
        B.wait_testid('empty-connector-incidents')
        B.open('oncall')
        cells = {e.get_attribute('data-field'): e.get_attribute('data-value') for e in
                 B.wait_testid('row-policy-primary-0').find_elements(By.CSS_SELECTOR, 'td')}
        check(cells.get('delay_seconds') == '1800' and 'alice' in (cells.get('targets') or ''),
              f'admin oncall: policy primary level 0 waits 1800 s and pages alice ({cells})')
        check(not B.by_testid('row-policy-primary-1'), 'admin oncall: policy primary has one level')
        prefix = '/api/v1/analytics/*'
        B.open('audit' + '?endpoint=' + urllib.parse.quote(prefix, safe=''))
        B.wait_testid('table-audit')
        eps = [e.get_attribute('data-value') for e in B.d.find_elements(
            By.CSS_SELECTOR, '[data-testid^="row-audit-"] [data-field="endpoint"]')]
        ids = [e.get_attribute('data-testid')[len('row-audit-'):] for e in B.d.find_elements(
            By.CSS_SELECTOR, '[data-testid^="row-audit-"]')]
        s, ans, _ = http_json('GET', f'{E}/api/v1/audit?endpoint={urllib.parse.quote(prefix, safe="")}',
                              headers={'Cookie': f'bpmc_session={B.cookie()}'})
        check(s == 200 and ids == [str(r['id']) for r in ans.get('records', [])],
              f'admin audit: the rows of endpoint={prefix} are the API\'s ({len(ids)} rows)')
        check(eps and all(e.startswith('/api/v1/analytics/') for e in eps),
              f'admin audit: endpoint={prefix} shows analytics requests only ({sorted(set(eps))})')
        B.open('audit?endpoint=' + urllib.parse.quote('/api/v1/analytics', safe=''))
        B.wait_testid('empty-audit')

        # 4: exports of overview.
        B.open('overview')
        B.wait_testid('overview-operations')
        for fmt in ('csv', 'xlsx', 'pdf'):
            before = set(os.listdir(downloads))
            B.wait_testid(f'export-{fmt}').click()

            def downloaded():
                new = [f for f in set(os.listdir(downloads)) - before if not f.endswith('.crdownload') and not f.startswith('.')]
                return new and os.path.getsize(os.path.join(downloads, new[0])) > 0 and new[0]
            try:
                name = wait_until(downloaded, 30, f'the {fmt} download')
            except Fatal as e:
                check(False, f'export {fmt}: {e}')
                continue
            path = os.path.join(downloads, name)
            shutil.copy(path, os.path.join(ART, f'admin-overview-export.{fmt}'))
            if fmt == 'csv':
                with open(path, newline='', encoding='utf-8-sig') as f:
                    rows = list(csv.reader(f))
                check(len(rows) >= 2 and any(str(total) in c for r in rows for c in r),
                      f'export csv {name}: {len(rows)} rows parsed, contains the operations count {total}')
            elif fmt == 'xlsx':
                import openpyxl
                wb = openpyxl.load_workbook(path, read_only=True)
                cells = [c for ws in wb.worksheets for r in ws.iter_rows(values_only=True) for c in r if c is not None]
                check(len(cells) > 1 and any(str(c) in (str(total), f'{total}.0') for c in cells),
                      f'export xlsx {name}: opens with openpyxl, {len(wb.worksheets)} sheet(s), {len(cells)} cells, contains {total}')
            else:
                with open(path, 'rb') as f:
                    check(f.read(5) == b'%PDF-', f'export pdf {name}: a PDF')
                txt = subprocess.run(['pdftotext', path, '-'], capture_output=True, text=True, timeout=60).stdout
                check(str(total) in txt or 'BPM' in txt or 'Обзор' in txt or 'Overview' in txt,
                      f'export pdf: pdftotext shows a known figure or title ({txt[:80]!r})')

        # 3: acknowledge the incident in the page.
        B.open(f'incidents/{inc_id}')
        st = B.wait_testid('incident-status').get_attribute('data-value')
        check(st == 'triggered', f'incident {inc_id}: status {st} before ack')
        n_before = len(B.d.find_elements(By.CSS_SELECTOR, '[data-testid^="row-incident-timeline-"]'))
        B.wait_testid('incident-ack').click()
        B.wait(lambda d: d.execute_script(
            "const e = document.querySelector('[data-testid=\"incident-status\"]');"
            " return !!e && e.dataset.value === 'acknowledged';"), 15, 'status acknowledged')
        kinds = B.wait(lambda d: [e.get_attribute('data-value') for e in d.find_elements(
            By.CSS_SELECTOR, '[data-testid^="row-incident-timeline-"] [data-field="kind"]')] or None, 10, 'timeline rows')
        check(len(kinds) > n_before and any('ack' in (k or '') for k in kinds),
              f'incident {inc_id}: timeline {kinds} got an acknowledgement row (had {n_before} rows)')
        actor = [e.get_attribute('data-value') for e in B.d.find_elements(
            By.CSS_SELECTOR, '[data-testid^="row-incident-timeline-"] [data-field="actor"]')]
        check('admin' in ' '.join(a or '' for a in actor), f'incident {inc_id}: the acknowledgement names admin ({actor})')
        check(B.wait_testid('incident-acknowledged').get_attribute('data-value') not in ('null', '', None), 'incident-acknowledged set')
        check(not B.by_testid('incident-ack'), 'ack button gone after the acknowledgement')

        # 3b: snooze it for 30 minutes, reassign it to alice (back to triggered), acknowledge again.
        Select(B.wait_testid('incident-snooze-duration')).select_by_value('30m')
        B.wait_testid('incident-snooze').click()
        until = B.wait_testid('incident-snoozed').get_attribute('data-value')
        s, b, _ = http_json('GET', f'{E}/receiver/api/v1/incidents/{inc_id}', headers=admin_cookie)
        check(s == 200 and b.get('snoozed_until') == until and b.get('snoozed_by') == 'admin' and b.get('status') == 'acknowledged',
              f'incident {inc_id}: snoozed until {until} by admin, still acknowledged ({b.get("snoozed_until")}, {b.get("snoozed_by")}, {b.get("status")})')
        if b.get('snoozed_until'):
            left = datetime.fromisoformat(b['snoozed_until'].replace('Z', '+00:00')) - datetime.now(timezone.utc)
            check(1700 < left.total_seconds() <= 1800, f'snoozed for 30 minutes ({left.total_seconds():.0f} s left)')
        print(f'  screenshot {B.shot("admin", f"incidents/{inc_id}-snoozed")}', flush=True)
        B.wait(lambda d: d.find_element(By.CSS_SELECTOR, '[data-testid="incident-reassign"]').is_enabled(), 15, 'reassign targets loaded')
        target = Select(B.wait_testid('incident-reassign-target'))
        options = [o.get_attribute('value') for o in target.options]
        check('{"person":"alice"}' in options and '{"schedule":"primary"}' in options,
              f'reassign offers the schedule and the person ({options})')
        target.select_by_value('{"person":"alice"}')
        B.wait_testid('incident-reassign').click()
        B.wait(lambda d: d.execute_script(
            "const e = document.querySelector('[data-testid=\"incident-status\"]');"
            " return !!e && e.dataset.value === 'triggered';"), 15, 'status triggered after the reassignment')
        kinds = B.wait(lambda d: [e.get_attribute('data-value') for e in d.find_elements(
            By.CSS_SELECTOR, '[data-testid^="row-incident-timeline-"] [data-field="kind"]')] or None, 10, 'timeline rows')
        check('snoozed' in kinds and 'reassigned' in kinds, f'incident {inc_id}: timeline {kinds} has snoozed and reassigned')
        check(not B.by_testid('incident-snoozed'), 'the snooze is cleared by the reassignment')
        print(f'  screenshot {B.shot("admin", f"incidents/{inc_id}-reassigned")}', flush=True)
        B.wait_testid('incident-ack').click()
        B.wait(lambda d: d.execute_script(
            "const e = document.querySelector('[data-testid=\"incident-status\"]');"
            " return !!e && e.dataset.value === 'acknowledged';"), 15, 'acknowledged again')
        visit('admin', f'incidents/{inc_id}', EXPECT.get(f'incidents/{inc_id}'))
        visit('admin', 'incidents', EXPECT.get('incidents'))

        # 7: a cross-origin page POSTs without the CSRF token; nothing changes.
        admin_session = B.cookie()
        Hook.pages['/evil-logout'] = (
            f'<!doctype html><html lang="en"><head><title>evil</title></head><body>'
            f'<form id="f" method="POST" action="{E}/console/api/logout" enctype="text/plain">'
            f'<input name="x" value="y"></form><script>document.getElementById("f").submit();</script></body></html>')
        Hook.pages['/evil-resolve'] = (
            f'<!doctype html><html lang="en"><head><title>evil</title></head><body><p id="r">…</p><script>'
            f'fetch("{E}/receiver/api/v1/incidents/{inc_id}/resolve", {{method: "POST", mode: "no-cors", credentials: "include",'
            f' headers: {{"Content-Type": "text/plain"}}, body: "{{}}"}}).then(r => document.getElementById("r").textContent = "sent " + r.type,'
            f' e => document.getElementById("r").textContent = "error " + e);</script></body></html>')
        # 127.0.0.1:<other port> is another origin but the same site (the SameSite=Strict
        # cookie goes along: the CSRF token must stop it); localhost:<port> is another site.
        for host in ('127.0.0.1', 'localhost'):
            B.d.get(f'http://{host}:{hook_port}/evil-resolve')
            sent = B.wait(lambda d: d.find_element(By.ID, 'r').text not in ('…', '') and d.find_element(By.ID, 'r').text,
                          15, 'the cross-site fetch')
            print(f'  cross-site fetch from {host}:{hook_port} to resolve: {sent}')
            B.d.get(f'http://{host}:{hook_port}/evil-logout')
            B.wait(lambda d: d.current_url.startswith(E), 15, 'the cross-site form post')
            body = B.d.find_element(By.TAG_NAME, 'body').text
            print(f'  cross-site form POST from {host}:{hook_port} to logout: {body[:120]!r}')
            if host == '127.0.0.1':
                check('csrf' in body.lower(), 'same-site cross-origin form POST to logout: refused for the missing CSRF token')
        s, b, _ = http_json('GET', f'{E}/console/api/session', headers={'Cookie': f'bpmc_session={admin_session}'})
        check(s == 200, f'cross-site POST to logout: the session is still valid ({s})')
        s, b, _ = http_json('GET', f'{E}/receiver/api/v1/incidents/{inc_id}', headers={'Cookie': f'bpmc_session={admin_session}'})
        check(s == 200 and b.get('status') == 'acknowledged', f'cross-site POST to resolve: incident still {b.get("status") if isinstance(b, dict) else b}')
        # The server itself refuses a POST with the cookie but no token (what a same-site form would send).
        s, _, _ = http('POST', f'{E}/console/api/logout', b'x=y', {'Cookie': f'bpmc_session={admin_session}',
                                                                    'Content-Type': 'text/plain', 'Origin': f'http://127.0.0.1:{hook_port}'})
        check(s == 403, f'POST /console/api/logout with the cookie and no CSRF token: {s} (403 expected)')
        s, _, _ = http('POST', f'{E}/receiver/api/v1/incidents/{inc_id}/resolve', b'{}', {'Cookie': f'bpmc_session={admin_session}'})
        check(s == 403, f'POST .../resolve with the cookie and no CSRF token: {s} (403 expected)')
        s, b, _ = http_json('GET', f'{E}/console/api/session', headers={'Cookie': f'bpmc_session={admin_session}'})
        check(s == 200, f'the session survived the token-less POSTs ({s})')

        # 6: logout by the button ends the session.
        B.d.get(f'{E}/console/#/overview')
        B.wait_testid('whoami')
        B.logout()
        s, _, _ = http('GET', f'{E}/console/api/session', headers={'Cookie': f'bpmc_session={admin_session}'})
        check(s == 401, f'after logout the old cookie gets 401 from /console/api/session ({s})')
        s, _, _ = http('GET', f'{E}/api/v1/analytics/overview', headers={'Cookie': f'bpmc_session={admin_session}'})
        check(s == 401, f'after logout the old cookie gets 401 from the analytics API ({s})')

        # 5: the customer.
        check(B.login('acme-user') == 'user', 'user (acme): logged in through the form')
        check(B.nav() == NAV['user'], f'user: navigation {sorted(B.nav())} == {sorted(NAV["user"])}')
        visit('user', 'my', EXPECT['my'])
        B.wait_testid('row-my-operations-crm-connector|getContact')
        ucookie = {'Cookie': f'bpmc_session={B.cookie()}'}
        href = B.wait_testid('export-csv').get_attribute('href')
        u = urllib.parse.urlsplit(href)
        q = [(k, v) for k, v in urllib.parse.parse_qsl(u.query) if k != 'format']
        s, ans, _ = http_json('GET', f'{E}{u.path}?{urllib.parse.urlencode(q)}', headers=ucookie)
        for tid, path in FIGURES['my'].items():
            pv = B.wait_testid(tid).get_attribute('data-value')
            check(same(pv, dig(ans, path)), f'user #my: {tid} data-value {pv} == API {json.dumps(dig(ans, path))}')
        acme_ops = len(ACME_EVENTS)
        check(B.wait_testid('my-operations').get_attribute('data-value') == str(acme_ops), f'user #my: operations == acme events {acme_ops}')
        pv = B.wait_testid('my-revenue').get_attribute('data-value')
        check(same(pv, 1500), f'user #my: revenue {pv} == acme\'s payment (1500 RUB), not globex\'s')
        acme_err = sum(1 for e in ACME_EVENTS if e[4] == 'error')
        B.wait_testid('my-errors-total')
        check(B.wait_testid('my-errors-total').get_attribute('data-value') == str(acme_err), f'user #my: errors == acme error events {acme_err}')
        # The status of the connectors acme subscribes to: crm-connector has the open
        # (acknowledged) incident; globex's erp-connector is not there.
        row = B.wait_testid('row-my-status-crm-connector')
        st = row.find_element(By.CSS_SELECTOR, '[data-field=status]').get_attribute('data-value')
        check(st == 'problem', f'user #my: crm-connector status {st} == problem (incident {inc_id} open)')
        check(not B.d.find_elements(By.CSS_SELECTOR, '[data-testid="row-my-status-erp-connector"]'),
              'user #my: no status row of globex\'s erp-connector')
        src = B.d.page_source
        leaked = [m for m in GLOBEX_MARKERS if m.lower() in src.lower()]
        check(not leaked, f'user #my: nothing of globex in the page ({leaked})')
        for url, what in (('/api/v1/analytics/overview?customer=globex', 'analytics overview of globex'),
                          ('/api/v1/analytics/financial?customer=globex', 'financial of globex'),
                          ('/api/v1/analytics/errors?customer=globex', 'errors of globex'),
                          ('/api/v1/audit', 'the audit log'),
                          ('/receiver/api/v1/incidents', 'the incidents'),
                          ('/receiver/api/v1/notices/status?customer=globex', 'the status of globex'),
                          (f'/receiver/api/v1/incidents/{inc_id}', 'one incident')):
            r = B.fetch_status(url)
            check(r['status'] == 403 and not any(m.lower() in r['body'].lower() for m in GLOBEX_MARKERS),
                  f'user: fetch {url} ({what}) from the page -> {r["status"]} (403 expected)')
        for page in ('audit', 'financial?customer=globex', 'overview?customer=globex', f'incidents/{inc_id}'):
            B.open(page)
            src = B.d.page_source
            leaked = [m for m in GLOBEX_MARKERS if m.lower() in src.replace('customer=globex', '').lower()]
            figs = B.d.find_elements(By.CSS_SELECTOR, '[data-value]')
            check(not figs and not leaked, f'user #{page}: refused in the page, no figures, nothing of globex ({leaked})')
            shots.append(B.shot('user', page))
        B.open('my')
        B.logout()

        print('\nscreenshots (' + ART + '): ' + ', '.join(shots))
    except Fatal as e:
        check(False, f'fatal: {e}')
    except Exception as e:  # noqa: BLE001 - reported, then cleaned up
        import traceback
        traceback.print_exc()
        check(False, f'error: {e!r}')
        if browser:
            try:
                browser.d.save_screenshot(os.path.join(ART, 'failure.png'))
            except Exception:  # noqa: BLE001
                pass
    finally:
        if browser:
            try:
                for e in browser.d.get_log('browser'):
                    if e['level'] == 'SEVERE' and 'favicon' not in e['message'] and 'status of 4' not in e['message']:
                        print('browser console:', e['message'])
            except Exception:  # noqa: BLE001
                pass
            browser.quit()
        if hook_srv:
            hook_srv.shutdown()
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        failed_now = any(not ok for ok, _ in results)
        for p in procs:
            if failed_now or p.returncode not in (0, -signal.SIGTERM):
                print(f'--- {p.name} log (exit {p.returncode}), last 3000 chars:')
                print(open(p.log_path, errors='replace').read()[-3000:])
        try:
            pg.stop()
        except Exception as e:  # noqa: BLE001
            print(f'pg_ctl stop: {e}')
        for d in cleanup_dirs:
            shutil.rmtree(d, ignore_errors=True)

    bad = [w for ok, w in results if not ok]
    print(f'\n{len(results) - len(bad)} passed, {len(bad)} failed, {time.monotonic() - T0:.1f} s; artifacts in {ART}')
    for w in bad:
        print('FAILED: ' + w)
    return 1 if bad or not results else 0


def _terminated(signum, frame):
    # ctest's timeout or ^C: unwind through main()'s finally (processes, cluster, temp dirs).
    raise Fatal(f'signal {signum}')


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, _terminated)
    sys.exit(main())
