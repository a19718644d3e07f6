#!/usr/bin/python3
"""The console's figures of issue 15 §5 against a running bpmc-exporter (bench/console_bench.sh
loads the data set and starts it; this script only measures and prints markdown tables).

  1. page data: for each page and role, the requests the page issues for its default view
     (console/src/analytics.js, pages/*.js: one GET each, the last 30 days, granularity day),
     sent by a logged-in user (session cookie) on one keep-alive connection, as a browser
     would, N times in sequence: with `Cache-Control: no-cache` (every answer computed) and
     without (the answer cache: what a second viewer sees); baseline on the same connection:
     GET /healthz and GET /console/app.js (static, no database);
  2. first render: headless Chromium, logged in, the cache disabled, loads /console/#/overview
     from about:blank R times: navigation timing (domContentLoadedEventEnd, loadEventEnd) and
     the time until the headline figure `[data-testid=overview-operations][data-value]`
     appears (a MutationObserver installed before the page's scripts, performance.now());
     baseline: the same navigation of a trivial static page served by python's http.server;
  3. size: index.html, app.js and app.css as served with Accept-Encoding: gzip (bytes on the
     wire) against 250 KB.

Usage: console_bench.py BASE_URL PASSWORD --users admin:admin,manager:manager
       [--requests 30] [--render-runs 10] [--connector conn-1]
"""
import argparse
import datetime
import http.client
import http.server
import json
import math
import os
import sys
import tempfile
import threading
import time
import urllib.parse

TARGET_DATA_MS = 300.0
TARGET_RENDER_MS = 1000.0
TARGET_GZIP_BYTES = 250 * 1024


def pctl(values, p):
    """Nearest-rank percentile (as bench/lib.sh's pctl)."""
    if not values:
        return float('nan')
    s = sorted(values)
    i = max(1, min(len(s), math.ceil(p / 100.0 * len(s) - 1e-9)))
    return s[i - 1]


def verdict(value, target):
    return 'PASS' if value <= target else 'MISS'


class Client:
    """One keep-alive HTTP/1.1 connection, as one browser tab's."""

    def __init__(self, base, cookie=None):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.cookie = cookie
        self.conn = None

    def request(self, method, path, headers=None, body=None):
        h = {'Accept': 'application/json', 'Accept-Encoding': 'gzip'}
        if self.cookie:
            h['Cookie'] = f'bpmc_session={self.cookie}'
        h.update(headers or {})
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                ms = (time.perf_counter() - t0) * 1000.0
                if r.getheader('Connection', '').lower() == 'close':
                    self.conn.close()
                    self.conn = None
                return r.status, r.getheaders(), data, ms
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError('unreachable')


def login(base, name, password):
    c = Client(base)
    status, headers, data, _ = c.request('POST', '/console/api/login', {'Content-Type': 'application/json'},
                                         json.dumps({'name': name, 'password': password}))
    if status != 200:
        sys.exit(f'login of {name} answered {status}: {data[:300]!r}')
    for k, v in headers:
        if k.lower() == 'set-cookie' and v.startswith('bpmc_session='):
            return v.split(';', 1)[0].split('=', 1)[1]
    sys.exit(f'login of {name}: no bpmc_session cookie')


def default_query():
    """The console's default period (analytics.js defaultPeriod/params) in UTC dates."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    frm, to = today - datetime.timedelta(days=29), today + datetime.timedelta(days=1)
    return urllib.parse.urlencode({'from': frm.isoformat(), 'to': to.isoformat(), 'granularity': 'day'})


def pages_for(role, connector):
    """page -> the requests its default view issues (one each: no page issues several; the
    connector page's incidents, /receiver/api/v1/incidents?limit=500, come after its figures,
    from bpmc-receiver, and are not measured here)."""
    q = default_query()
    a = lambda ep: f'/api/v1/analytics/{ep}?{q}'  # noqa: E731
    pages = {
        'overview': [a('overview')],
        'connectors': [a('connectors')],
        f'connectors/{connector}': [a(f'connectors/{urllib.parse.quote(connector)}')],
        'errors': [a('errors')],
    }
    if role in ('admin', 'manager'):
        pages['users'] = [a('users')]
        pages['financial'] = [a('financial')]
    if role == 'admin':
        pages['audit'] = ['/api/v1/audit']
    return pages


def time_page(client, paths, n, extra):
    """n sequential page loads; a load = all of the page's requests answered (one each here)."""
    times = []
    for _ in range(n):
        total = 0.0
        for p in paths:
            status, _, data, ms = client.request('GET', p, extra)
            if status != 200:
                sys.exit(f'{p} answered {status}: {data[:300]!r}')
            total += ms
        times.append(total)
    return times


def page_data(base, users, n, connector):
    rows = []
    for role, name, cookie in users:
        client = Client(base, cookie)
        # Baselines on the same connection: no database, no session.
        for label, path in (('GET /healthz (baseline)', '/healthz'), ('GET /console/app.js gzip (baseline)', '/console/app.js')):
            client.request('GET', path)
            ts = []
            for _ in range(n):
                status, _, _, ms = client.request('GET', path)
                assert status == 200, (path, status)
                ts.append(ms)
            rows.append((role, label, '', ts))
        for page, paths in pages_for(role, connector).items():
            time_page(client, paths, 1, {})  # warm-up: the connection, the plan caches
            modes = (('computed', {'Cache-Control': 'no-cache'}), ('cache', {}))
            if page == 'audit':  # the audit log has no answer cache: always read
                modes = modes[:1]
            for mode, extra in modes:
                rows.append((role, page, mode, time_page(client, paths, n, extra)))
            print(f'[console-bench] {role} {page}: done', file=sys.stderr, flush=True)
    return rows


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def render(base, user, password, runs):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    os.environ['TZ'] = 'UTC'  # the console's default period in UTC dates, as the exporter's
    opts = webdriver.ChromeOptions()
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--window-size=1280,900', '--lang=ru'):
        opts.add_argument(a)
    if os.path.exists('/usr/bin/chromium'):
        opts.binary_location = '/usr/bin/chromium'
    service = Service(executable_path='/usr/bin/chromedriver') if os.path.exists('/usr/bin/chromedriver') else None
    d = webdriver.Chrome(options=opts, service=service) if service else webdriver.Chrome(options=opts)
    d.set_page_load_timeout(60)

    # The trivial static page of the baseline, served in this run.
    static_dir = tempfile.mkdtemp(prefix='console-bench-static.')
    with open(os.path.join(static_dir, 'index.html'), 'w') as f:
        f.write('<!doctype html><html><head><meta charset="utf-8"><title>b</title></head>'
                '<body><p data-testid="overview-operations" data-value="1">1</p></body></html>')
    handler = lambda *a, **k: Quiet(*a, directory=static_dir, **k)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    static_url = f'http://127.0.0.1:{srv.server_address[1]}/index.html'

    try:
        wait = lambda cond, t=60: WebDriverWait(d, t, poll_frequency=0.02).until(cond)  # noqa: E731
        d.get(base + '/console/#/login')
        wait(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="login-form"]'))
        d.find_element(By.CSS_SELECTOR, '[data-testid="login-name"]').send_keys(user)
        d.find_element(By.CSS_SELECTOR, '[data-testid="login-password"]').send_keys(password)
        d.find_element(By.CSS_SELECTOR, '[data-testid="login-submit"]').click()
        wait(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="overview-operations"][data-value]'))

        d.execute_cdp_cmd('Network.enable', {})
        d.execute_cdp_cmd('Network.setCacheDisabled', {'cacheDisabled': True})
        # Before any script of the page: note when the headline figure is filled.
        d.execute_cdp_cmd('Page.addScriptToEvaluateOnNewDocument', {'source': '''
            (() => {
              const sel = '[data-testid="overview-operations"][data-value]';
              const note = () => { if (window.__figuresAt === undefined && document.querySelector(sel)) {
                window.__figuresAt = performance.now(); return true; } return false; };
              new MutationObserver((_, o) => { if (note()) o.disconnect(); })
                .observe(document, { childList: true, subtree: true, attributes: true });
            })();'''})
        script = '''
            const n = performance.getEntriesByType('navigation')[0];
            const r = (part) => performance.getEntriesByType('resource').find((e) => e.name.includes(part));
            const s = r('/console/api/session'), a = r('/api/v1/analytics/overview');
            return [n.domContentLoadedEventEnd, n.loadEventEnd, window.__figuresAt === undefined ? null : window.__figuresAt,
                    s ? s.responseEnd : null, a ? a.startTime : null, a ? a.responseEnd : null];'''

        def run(url):
            d.get('about:blank')
            d.get(url)
            wait(lambda d: d.execute_script('return window.__figuresAt !== undefined && '
                                            "performance.getEntriesByType('navigation')[0].loadEventEnd > 0"))
            return d.execute_script(script)

        results = {'console': [], 'static': []}
        for i in range(runs + 1):
            c = run(base + "/console/#/overview")
            s = run(static_url)
            if i:  # the first of each: warm-up (chromium's own start-up)
                results['console'].append(c)
                results['static'].append(s)
        return results, static_url
    finally:
        d.quit()
        srv.shutdown()


def sizes(base):
    c = Client(base)
    out = []
    for name, path in (('index.html', '/console/'), ('app.js', '/console/app.js'), ('app.css', '/console/app.css')):
        status, headers, data, _ = c.request('GET', path, {'Accept': '*/*'})
        assert status == 200, (path, status)
        enc = dict((k.lower(), v) for k, v in headers).get('content-encoding', 'identity')
        _, _, plain, _ = c.request('GET', path, {'Accept': '*/*', 'Accept-Encoding': 'identity'})
        out.append((name, len(data), enc, len(plain)))
    return out


def fmt(v):
    return f'{v:.1f}'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('base')
    ap.add_argument('password')
    ap.add_argument('--users', default='admin:admin,manager:manager', help='role:name,...')
    ap.add_argument('--requests', type=int, default=30)
    ap.add_argument('--render-runs', type=int, default=10)
    ap.add_argument('--connector', default='conn-1')
    ap.add_argument('--render-user', default='admin')
    a = ap.parse_args()

    users = []
    for item in a.users.split(','):
        role, name = item.split(':')
        users.append((role, name, login(a.base, name, a.password)))

    rows = page_data(a.base, users, a.requests, a.connector)
    print(f'[console-bench] first render: {a.render_runs} runs', file=sys.stderr, flush=True)
    rend, _ = render(a.base, a.render_user, a.password, a.render_runs) if a.render_runs > 0 else ({}, '')
    sz = sizes(a.base)

    print(f'Page data: {a.requests} sequential loads per page and mode on one keep-alive connection, '
          f'the page\'s default view (last 30 days, granularity day); "computed" = Cache-Control: no-cache, '
          f'"cache" = the answer cache on (a second viewer; analytics_cache_ms as shipped, 1 s). '
          f'Not measured: the connector page\'s open incidents (bpmc-receiver, asked after the figures). '
          f'Target p95 ≤ {TARGET_DATA_MS:.0f} ms.')
    print()
    print('| role | page | answers | p50 ms | p95 ms | max ms | p95 / 300 ms | |')
    print('|---|---|---|---:|---:|---:|---:|---|')
    for role, page, mode, ts in rows:
        p95 = pctl(ts, 95)
        base = mode == ''
        print(f'| {role} | {page} | {mode or "—"} | {fmt(pctl(ts, 50))} | {fmt(p95)} | {fmt(max(ts))} | '
              f'{"" if base else f"{p95 / TARGET_DATA_MS:.2f}"} | {"baseline" if base else verdict(p95, TARGET_DATA_MS)} |')
    if rend:
        print()
        print(f'First render: headless Chromium ({a.render_user}), cache disabled, /console/#/overview loaded from '
              f'about:blank, {a.render_runs} runs after one warm-up; ms from navigation start. '
              f'Baseline: a one-paragraph static page from python http.server, same browser, same runs. '
              f'Target ≤ {TARGET_RENDER_MS:.0f} ms.')
        print()
        print('| page | measure | p50 ms | p95 ms | max ms | p95 / 1 s | |')
        print('|---|---|---:|---:|---:|---:|---|')
        for key, label in (('console', '/console/#/overview'), ('static', 'static page (baseline)')):
            for idx, what in ((0, 'domContentLoadedEventEnd'), (1, 'loadEventEnd'), (3, '(session answered)'),
                              (4, '(overview data asked)'), (5, '(overview data answered)'), (2, 'headline figure filled')):
                if key == 'static' and idx >= 2:
                    continue
                ts = [r[idx] for r in rend[key] if r[idx] is not None]
                if not ts:
                    continue
                p95 = pctl(ts, 95)
                v = 'baseline' if key == 'static' else verdict(p95, TARGET_RENDER_MS)
                if what.startswith('('):
                    v = 'where the time goes'
                    print(f'| {label} | {what} | {fmt(pctl(ts, 50))} | {fmt(p95)} | {fmt(max(ts))} | | {v} |')
                    continue
                print(f'| {label} | {what} | {fmt(pctl(ts, 50))} | {fmt(p95)} | {fmt(max(ts))} | '
                      f'{"" if key == "static" else f"{p95 / TARGET_RENDER_MS:.2f}"} | {v} |')
    print()
    print('Size as served (GET with Accept-Encoding: gzip; bytes on the wire). Target JavaScript + CSS ≤ 250 KB gzip.')
    print()
    print('| file | bytes on the wire | encoding | uncompressed bytes |')
    print('|---|---:|---|---:|')
    for name, wire, enc, plain in sz:
        print(f'| {name} | {wire:,} | {enc} | {plain:,} |')
    js_css = sum(w for n, w, _, _ in sz if n != 'index.html')
    total = sum(w for _, w, _, _ in sz)
    print(f'| app.js + app.css | {js_css:,} ({js_css / 1024:.1f} KB) | | ratio {js_css / TARGET_GZIP_BYTES:.3f} of 250 KB: '
          f'{verdict(js_css, TARGET_GZIP_BYTES)} |')
    print(f'| + index.html | {total:,} ({total / 1024:.1f} KB) | | ratio {total / TARGET_GZIP_BYTES:.3f}: '
          f'{verdict(total, TARGET_GZIP_BYTES)} |')


if __name__ == '__main__':
    main()
