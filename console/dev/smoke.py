#!/usr/bin/env python3
"""Headless Chromium smoke run of the console against stub_server.py: logs in
as each role, opens every page the role may use, fails on a JavaScript error
or a missing figure, and runs axe-core (node_modules/axe-core/axe.min.js) on
each page. Needs chromium, chromium-driver and python3-selenium.

    python3 console/dev/smoke.py http://127.0.0.1:8099/console/ console/node_modules/axe-core/axe.min.js
"""
import sys
import time

from selenium import webdriver
from selenium.webdriver.common.by import By

BASE = sys.argv[1]
AXE = open(sys.argv[2]).read() if len(sys.argv) > 2 else None

PAGES = {
    'admin': ['overview', 'connectors', 'connectors/crm-connector', 'users', 'financial', 'errors', 'incidents', 'incidents/7', 'oncall', 'maintenance', 'audit'],
    'manager': ['overview', 'connectors', 'users', 'financial', 'errors', 'incidents', 'oncall', 'maintenance'],
    'support': ['overview', 'errors', 'incidents/7', 'oncall', 'maintenance'],
    'user': ['my'],
}
EXPECT = {
    'overview': ['overview-operations', 'overview-revenue', 'row-overview-connectors-crm-connector'],
    'connectors': ['row-connectors-crm-connector'],
    'connectors/crm-connector': ['connector-p95-time', 'row-connector-operations-getContact', 'row-connector-incidents-7'],
    'users': ['users-active', 'row-users-activity-2-10'],
    'financial': ['financial-revenue', 'row-financial-failed-card_declined'],
    'errors': ['errors-total', 'row-errors-frequent-crm-connector|getContact|timeout'],
    'incidents': ['row-incidents-7'],
    'incidents/7': ['incident-status', 'row-incident-timeline-0'],
    'oncall': ['row-oncall-primary', 'row-oncall-shifts-primary-0', 'row-policy-primary-0', 'row-policy-primary-1'],
    'maintenance': ['row-maintenance-4'],
    'audit': ['row-audit-42'],
    'my': ['my-operations', 'row-my-connectors-crm-connector', 'row-my-operations-crm-connector|getContact', 'row-my-notices-3'],
}

opts = webdriver.ChromeOptions()
for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--window-size=1280,900'):
    opts.add_argument(a)
opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
d = webdriver.Chrome(options=opts)
failures = []

def wait_for(testid, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        els = d.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')
        if els:
            return els[0]
        time.sleep(0.1)
    return None

def logs():
    for e in d.get_log('browser'):
        if e['level'] == 'SEVERE' and 'favicon' not in e['message'] and 'status of 4' not in e['message']:
            failures.append(f'js: {e["message"]}')

for role, pages in PAGES.items():
    d.get(BASE + '#/login')
    name = wait_for('login-name')
    name.send_keys(role)
    d.find_element(By.CSS_SELECTOR, '[data-testid="login-password"]').send_keys('pw')
    d.find_element(By.CSS_SELECTOR, '[data-testid="login-submit"]').click()
    if not wait_for('whoami'):
        failures.append(f'{role}: login failed')
        continue
    for page in pages:
        d.get(BASE + '#/' + page)
        d.refresh()
        for tid in EXPECT.get(page, []):
            el = wait_for(tid)
            if el is None:
                failures.append(f'{role} #{page}: no [data-testid={tid}]')
            else:
                print(f'{role:8} #{page:26} {tid:45} {el.get_attribute("data-value")!r:>14} {el.text[:40]!r}')
        alert = d.find_element(By.ID, 'alerts').text
        if alert:
            failures.append(f'{role} #{page}: alert {alert!r}')
        if AXE:
            time.sleep(0.3)
            d.execute_script(AXE)
            res = d.execute_async_script('const cb = arguments[arguments.length-1]; axe.run(document).then(r => cb(r.violations.map(v => v.id + " (" + v.impact + "): " + v.nodes.length + " " + v.nodes[0].target.join(" "))));')
            for v in res:
                failures.append(f'{role} #{page}: axe {v}')
        logs()
    d.find_element(By.CSS_SELECTOR, '[data-testid="logout"]').click()
    wait_for('login-form')

def login(role, password='pw'):
    d.get(BASE + '#/login')
    d.refresh()
    wait_for('login-name').send_keys(role)
    d.find_element(By.CSS_SELECTOR, '[data-testid="login-password"]').send_keys(password)
    d.find_element(By.CSS_SELECTOR, '[data-testid="login-submit"]').click()

def check(cond, what):
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        failures.append(what)

# Bad credentials: the message and field; then 429 with the wait.
login('admin', 'bad')
a = wait_for('alert')
check(a is not None and 'wrong name or password' in a.text and 'password' in a.text, 'login 401 shows message and field')
for _ in range(3):
    login('admin', 'bad')
    time.sleep(0.3)
a = wait_for('alert')
check(a is not None and a.get_attribute('data-status') == '429' and ' 5 ' in a.text or (a and ' 4 ' in a.text), f'login 429 shows the wait: {a.text if a else None!r}')
time.sleep(6)

# Support: a customer needs a reason; exports are replaced by a note.
login('support')
wait_for('whoami')
d.get(BASE + '#/overview?customer=cust-A')
wait_for('overview-operations')
check(wait_for('export-unavailable') is not None, 'support + customer: no export links')
reason = d.find_element(By.CSS_SELECTOR, 'input[name=reason]')
check(reason.is_displayed() and reason.get_attribute('required') is not None, 'support + customer: reason field shown and required')
period_el = wait_for('period')
reason.send_keys('TICKET-1')
d.find_element(By.CSS_SELECTOR, '[data-testid="filters-apply"]').click()
time.sleep(0.5)
check('cust-A' in (wait_for('period').text or ''), 'support + customer + reason: customer data shown')
d.get(BASE + '#/users')
time.sleep(0.3)
check('недоступен' in d.find_element(By.TAG_NAME, 'h1').text, 'support: #/users refused in the page')
check(not d.find_elements(By.CSS_SELECTOR, '[data-testid="nav-users"]'), 'support: no users link')
d.find_element(By.CSS_SELECTOR, '[data-testid="logout"]').click()
wait_for('login-form')

# Admin: language, incident actions, maintenance form.
login('admin')
wait_for('whoami')
from selenium.webdriver.support.ui import Select
Select(d.find_element(By.ID, 'lang')).select_by_value('en')
time.sleep(0.3)
d.refresh()
wait_for('nav-overview')
check(d.find_element(By.TAG_NAME, 'html').get_attribute('lang') == 'en' and d.find_element(By.CSS_SELECTOR, '[data-testid="nav-overview"]').text == 'Overview', 'language switch to English is remembered')
check('$' not in wait_for('overview-revenue').text and 'RUB' in wait_for('overview-revenue').text, 'en money: ' + wait_for('overview-revenue').text)
Select(d.find_element(By.ID, 'lang')).select_by_value('ru')
d.get(BASE + '#/incidents/7')
wait_for('incident-ack').click()
time.sleep(0.5)
check(wait_for('incident-status').get_attribute('data-value') == 'acknowledged', 'incident acknowledged')
d.find_element(By.CSS_SELECTOR, '[data-testid="incident-note-form"] textarea').send_keys('looking into it')
wait_for('incident-note-add').click()
time.sleep(0.5)
check('looking into it' in d.find_element(By.CSS_SELECTOR, '[data-testid="table-incident-timeline"]').text, 'note added to the timeline')
wait_for('incident-ack') and failures.append('ack button still shown')
d.get(BASE + '#/maintenance')
wait_for('maintenance-form')
d.find_element(By.CSS_SELECTOR, 'input[name=connectors]').send_keys(' , ')
d.execute_script("for (const n of ['starts_at','ends_at']) { const e = document.querySelector(`input[name=${n}]`); e.value = '2026-12-20T01:00'; }")
d.find_element(By.CSS_SELECTOR, 'textarea[name=message]').send_keys('upgrade')
wait_for('maintenance-submit').click()
a = wait_for('alert')
check(a is not None and 'connectors' in a.text, 'maintenance: API error shown with field: ' + (a.text if a else ''))
logs()
d.quit()
print('\n'.join(failures) if failures else 'all pages rendered')
sys.exit(1 if failures else 0)
