// Browser test of the chat page (web/chat.html, served at GET /) in headless Chromium.
//
//   node tests/browser/chat.test.mjs        (after `cargo build --release`)
//
// Env: CHAT_TEST_BIN (default target/release/wsloop), CHROMIUM (default /usr/bin/chromium),
// CHAT_TEST_RESTART_SIGNAL (SIGTERM by default: a graceful drain; SIGKILL for a crash).
// It starts `wsloop serve` itself on a free loopback port and checks, with three users in
// their own browser contexts (alice, bob, carol):
//   - room chat: alice's message reaches bob and carol, and alice's own page;
//   - user content is shown as text, never parsed as HTML;
//   - a private message from alice reaches bob only (carol, in the same room, never sees it);
//   - an error reply (private to a user who is not connected) is shown inline;
//   - after the server is killed and restarted on the same port, every page reconnects and
//     rejoins its rooms by itself, and messages flow again (room and private);
//   - the phone layout: the sidebar is a drawer, nothing overflows sideways;
//   - no page error, and no console error except the browser's own "WebSocket connection
//     failed" lines while the server is down;
//   - with WSLOOP_COMPRESSION_ENABLED=true (read by the server too): every page agreed on
//     permessage-deflate, so all of the above ran compressed;
//   - README's "try it in one minute": a second server with JWT auth and an origin
//     allow-list (`--auth jwt --allowed-origin 'https://*.example.com'`) still serves its own
//     page; one user opens /?token=…, another types the token into the field, and they chat.
// Screenshots go to target/browser/. Every wait has a timeout; the server is always killed.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { access, constants, mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.CHAT_TEST_BIN || path.join(ROOT, 'target/release/wsloop');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = path.join(ROOT, 'target/browser');
const WAIT_MS = 15_000;        // any single UI wait
const RECONNECT_MS = 40_000;   // pages back online after the restart (backoff caps at 15 s)
const TOTAL_MS = 240_000;      // the whole test
// How the server is stopped for the restart check: SIGKILL (a crash: connections just drop)
// by default; SIGTERM exercises the graceful shutdown (close 1001) instead.
const RESTART_SIGNAL = process.env.CHAT_TEST_RESTART_SIGNAL || 'SIGTERM';

const servers = new Set();     // live server processes, killed whatever happens
let browser = null;
let passed = 0;
let failed = 0;
const serverLog = [];

// ---- reporting ---------------------------------------------------------------------------
async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok ${passed + failed} - ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    failed++;
    console.log(`not ok ${passed + failed} - ${name}`);
    err.counted = true;
    throw err;
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

// ---- the server --------------------------------------------------------------------------
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function exited(proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    proc.once('exit', () => { clearTimeout(timer); resolve(true); });
  });
}

async function startServer(port, extraArgs = []) {
  const deadline = Date.now() + 15_000;
  for (let attempt = 1; ; attempt++) {
    const proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
    });
    servers.add(proc);
    const tag = `[server pid ${proc.pid}] `;
    for (const stream of [proc.stdout, proc.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        for (const line of chunk.split('\n')) if (line) serverLog.push(tag + line);
        if (serverLog.length > 400) serverLog.splice(0, serverLog.length - 400);
      });
    }
    proc.on('exit', () => servers.delete(proc));
    proc.on('error', (err) => serverLog.push(`${tag}spawn error: ${err.message}`));
    // Ready when /healthz answers.
    while (Date.now() < deadline && proc.exitCode === null && proc.signalCode === null) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return proc;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    await stopServer(proc);
    // The port may still be held for a moment after a kill: try again until the deadline.
    if (Date.now() >= deadline) throw new Error(`server did not start on port ${port} (${attempt} attempts)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopServer(proc, signal = 'SIGTERM') {
  if (!proc) return;
  proc.kill(signal);
  if (!(await exited(proc, 5_000))) {
    proc.kill('SIGKILL');
    await exited(proc, 5_000);
  }
}

function killAllNow() {
  for (const proc of servers) {
    try { proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { killAllNow(); process.exit(130); });
}

// ---- the pages ---------------------------------------------------------------------------
const consoleErrors = [];
const pageErrors = [];

async function newPage(name, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`${name}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
  return page;
}

async function connectAs(page, base, name, beforeConnect) {
  await page.goto(base + '/');
  if (beforeConnect) await beforeConnect();
  await page.getByTestId('name-input').fill(name);
  await page.getByTestId('connect-button').click();
  await waitOnline(page, WAIT_MS);
  await roomJoined(page, 'lobby', WAIT_MS);
  const me = await page.getByTestId('me').textContent();
  assert(me.includes(name), `status shows the user name (${me})`);
}

async function waitOnline(page, timeout) {
  await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.dataset.state === 'online', null, { timeout });
}

async function roomJoined(page, room, timeout = WAIT_MS) {
  await page.locator(`[data-testid=room][data-room="${room}"][data-joined=true]`).waitFor({ state: 'attached', timeout });
}

async function joinRoom(page, room) {
  await page.getByTestId('room-input').fill(room);
  await page.getByTestId('join-button').click();
  await roomJoined(page, room);
  const title = await page.getByTestId('conversation-title').textContent();
  assert(title.includes(room), `joining selects the room (title: ${title})`);
}

async function sendText(page, text) {
  await page.getByTestId('message-input').fill(text);
  await page.getByTestId('send-button').click();
}

/** Waits until the shown conversation has a message whose text is exactly `text`. */
async function seesMessage(page, text, timeout = WAIT_MS) {
  await page.getByTestId('message-list').getByTestId('message-text').filter({ hasText: text })
    .first().waitFor({ timeout });
  const texts = await page.getByTestId('message-list').getByTestId('message-text').allTextContents();
  assert(texts.includes(text), `message text is exactly ${JSON.stringify(text)}`);
}

async function membersOf(page) {
  return page.locator('[data-testid=member-list] [data-testid=member]').evaluateAll((els) => els.map((e) => e.dataset.user));
}

async function waitMembers(page, users, timeout = WAIT_MS) {
  await page.waitForFunction((want) => {
    const have = [...document.querySelectorAll('[data-testid=member-list] [data-testid=member]')].map((e) => e.dataset.user);
    return want.every((u) => have.includes(u));
  }, users, { timeout });
}

async function selectRoom(page, room) {
  await page.locator(`[data-testid=room][data-room="${room}"] button.pick`).click();
  const title = await page.getByTestId('conversation-title').textContent();
  assert(title.includes(room), `room ${room} shown (title: ${title})`);
}

async function shot(page, file) {
  await page.screenshot({ path: path.join(OUT, file), timeout: WAIT_MS });
  console.log(`    screenshot: target/browser/${file}`);
}

// ---- the test ----------------------------------------------------------------------------
async function main() {
  await mkdir(OUT, { recursive: true });
  await access(BIN, constants.X_OK).catch(() => {
    throw new Error(`${BIN} is not an executable: run cargo build --release first (or set CHAT_TEST_BIN)`);
  });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let server = await startServer(port);
  console.log(`# wsloop serve on ${base} (${BIN})`);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    timeout: 30_000,
  });
  console.log(`# chromium ${browser.version()}`);

  const room = `room-${process.pid}`;
  const tag = Date.now().toString(36);
  const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => newPage(n)));

  await check('three users connect and join lobby by default', async () => {
    await Promise.all([connectAs(alice, base, 'alice', () => shot(alice, 'chat-start.png')), connectAs(bob, base, 'bob'), connectAs(carol, base, 'carol')]);
  });

  await check(`all three join #${room}; members and presence show up`, async () => {
    for (const page of [alice, bob, carol]) await joinRoom(page, room);
    await waitMembers(alice, ['alice', 'bob', 'carol']);
    await alice.getByTestId('message-list').locator('[data-kind=presence]', { hasText: 'carol joined' }).waitFor();
    const count = await alice.getByTestId('member-count').textContent();
    assert(count === '3', `member count is 3 (got ${count})`);
  });

  const hello = `hello from alice ${tag}`;
  await check('a room message from alice shows on bob, carol and alice', async () => {
    await sendText(alice, hello);
    await Promise.all([seesMessage(bob, hello), seesMessage(carol, hello), seesMessage(alice, hello)]);
    const sender = await bob.getByTestId('message-list').locator('[data-testid=message][data-kind=chat]').last().getAttribute('data-sender');
    assert(sender === 'alice', `sender shown as alice (got ${sender})`);
  });

  await check('message text is escaped, never parsed as HTML', async () => {
    const evil = `<img src=x onerror="window.__pwned=1"><b>bold</b> ${tag}`;
    await sendText(alice, evil);
    await seesMessage(bob, evil);
    const found = await bob.evaluate(() => ({
      tags: document.querySelectorAll('[data-testid=message-list] img, [data-testid=message-list] b').length,
      pwned: window.__pwned === 1,
    }));
    assert(found.tags === 0 && !found.pwned, `no element made from message text (${JSON.stringify(found)})`);
  });

  const secret = `psst bob, private ${tag}`;
  await check('a private message from alice reaches bob', async () => {
    await alice.locator('[data-testid=member-list] [data-testid=member][data-user=bob] button').click();
    const title = await alice.getByTestId('conversation-title').textContent();
    assert(title.includes('bob'), `clicking member bob opens the private conversation (title: ${title})`);
    await sendText(alice, secret);
    await seesMessage(alice, secret);
    await alice.locator('[data-testid=message][data-kind=private][data-state=sent]').first().waitFor();
    // bob: a private conversation with alice appears, with an unread badge
    const dm = bob.locator('[data-testid=dm-list] [data-testid=dm][data-user=alice]');
    await dm.waitFor();
    await dm.getByTestId('unread').waitFor();
    const roomTexts = await bob.getByTestId('message-list').getByTestId('message-text').allTextContents();
    assert(!roomTexts.includes(secret), 'the private message is not shown in the room');
    await dm.locator('button.pick').click();
    await seesMessage(bob, secret);
  });

  await check('carol, in the same room, never sees the private message', async () => {
    // A room message sent after the private one: once carol has it, she would also have
    // had the private message had it been sent to her (one connection, in order).
    const after = `after the private one ${tag}`;
    await selectRoom(alice, room);
    await sendText(alice, after);
    await seesMessage(carol, after);
    const dms = await carol.locator('[data-testid=dm-list] [data-testid=dm]').count();
    assert(dms === 0, `carol has no private conversation (${dms})`);
    const text = await carol.evaluate(() => document.documentElement.textContent);
    assert(!text.includes(secret), 'the secret is nowhere on carol\'s page');
  });

  await check('an error reply is shown inline', async () => {
    await carol.getByTestId('private-recipient').fill('nobody-here');
    await carol.getByTestId('private-open').click();
    await sendText(carol, 'anyone there?');
    const err = carol.getByTestId('message-list').locator('[data-testid=message][data-kind=error]', { hasText: 'recipient_not_connected' });
    await err.waitFor();
    await carol.locator('[data-testid=message][data-kind=private][data-state=failed]').waitFor();
    await selectRoom(carol, room);
  });

  await selectRoom(bob, room);
  await shot(bob, 'chat.png');
  await alice.locator('[data-testid=dm][data-user=bob] button.pick').click();
  await shot(alice, 'chat-private.png');
  await selectRoom(alice, room);

  await check(`server stopped (${RESTART_SIGNAL}): every page shows "reconnecting in Ns"`, async () => {
    await stopServer(server, RESTART_SIGNAL);
    server = null;
    for (const page of [alice, bob, carol]) {
      await page.waitForFunction(() => /^reconnecting in \d+s$/.test(document.querySelector('[data-testid=status]')?.textContent.trim().replace(/\s*retry now$/, '')), null, { timeout: WAIT_MS });
    }
    const joined = await alice.locator('[data-testid=room][data-joined=true]').count();
    assert(joined === 0, `no room shown as joined while disconnected (${joined})`);
    await shot(alice, 'chat-reconnecting.png');
  });

  // Stay down a little, so the pages go through a few backoff rounds.
  await new Promise((r) => setTimeout(r, 1500));

  await check('server restarted on the same port: pages reconnect and rejoin by themselves', async () => {
    server = await startServer(port);
    await Promise.all([alice, bob, carol].map(async (page) => {
      await waitOnline(page, RECONNECT_MS);
      await roomJoined(page, room, RECONNECT_MS);
      await roomJoined(page, 'lobby', RECONNECT_MS);
    }));
    await waitMembers(alice, ['alice', 'bob', 'carol'], RECONNECT_MS);
  });

  await check('after the restart, room and private messages flow again', async () => {
    const again = `bob is back ${tag}`;
    await sendText(bob, again);
    await Promise.all([seesMessage(alice, again), seesMessage(carol, again)]);
    await bob.locator('[data-testid=dm][data-user=alice] button.pick').click();
    const reply = `got your secret ${tag}`;
    await sendText(bob, reply);
    await bob.locator('[data-testid=message][data-kind=private][data-state=sent]').first().waitFor();
    const dm = alice.locator('[data-testid=dm][data-user=bob]');
    await dm.getByTestId('unread').waitFor();
    await dm.locator('button.pick').click();
    await seesMessage(alice, reply);
    const carolText = await carol.evaluate(() => document.documentElement.textContent);
    assert(!carolText.includes(reply), 'carol does not see bob\'s private reply');
  });

  await selectRoom(alice, room);
  await shot(alice, 'chat-reconnected.png');

  await check('phone layout: sidebar is a drawer, nothing overflows', async () => {
    const phone = await newPage('dave', { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'dark' });
    await connectAs(phone, base, 'dave');
    assert(!(await phone.locator('#sidebar').isVisible()), 'sidebar hidden on a phone');
    await phone.getByTestId('menu-button').click();
    await phone.getByTestId('room-input').waitFor({ state: 'visible' });
    await joinRoom(phone, room);
    await phone.locator('#sidebar').waitFor({ state: 'hidden' });
    const hi = `hi dave, welcome to the room ${tag}`;
    await sendText(alice, hi);
    await seesMessage(phone, hi);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 0, `no horizontal overflow (${overflow}px)`);
    await shot(phone, 'chat-phone.png');
    await phone.getByTestId('menu-button').click();
    await phone.locator('#sidebar').waitFor({ state: 'visible' });
    await phone.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().left >= 0, null, { timeout: WAIT_MS });
    await phone.waitForTimeout(300); // the slide-in transition settles
    await shot(phone, 'chat-phone-menu.png');
  });

  await check('no page errors; no console errors but the browser\'s own failed-connection lines', async () => {
    const unexpected = consoleErrors.filter((e) => !/WebSocket connection to '.*' failed/.test(e));
    assert(pageErrors.length === 0, `page errors: ${pageErrors.join(' | ')}`);
    assert(unexpected.length === 0, `console errors: ${unexpected.join(' | ')}`);
  });

  await check('JWT auth and an origin allow-list: the page connects with a token (URL or field)', async () => {
    const secret = `browser-secret-${tag}`;
    const authPort = await freePort();
    const authBase = `http://127.0.0.1:${authPort}`;
    await startServer(authPort, ['--auth', 'jwt', '--jwt-secret', secret, '--allowed-origin', 'https://*.example.com']);
    const mint = (user) => new Promise((resolve, reject) => {
      const proc = spawn(BIN, ['token', '--user', user, '--ttl', '10m', '--secret', secret], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout.setEncoding('utf8');
      proc.stdout.on('data', (c) => { out += c; });
      // 'close', not 'exit': 'exit' can come before the last of stdout, and a token cut
      // short is refused with 401 (this made the check flaky on a loaded machine).
      proc.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`wsloop token exited ${code}`))));
    });
    const [erin, frank] = await Promise.all([newPage('erin'), newPage('frank')]);
    const [erinToken, frankToken] = await Promise.all([mint('erin'), mint('frank')]);
    // erin: the token in the page's URL fills the field.
    await erin.goto(`${authBase}/?token=${encodeURIComponent(erinToken)}`);
    const filled = await erin.getByTestId('token-input').inputValue();
    assert(filled === erinToken, 'the token field is filled from ?token=');
    await erin.getByTestId('connect-button').click();
    // frank: types it into the field.
    await frank.goto(`${authBase}/`);
    await frank.getByTestId('token-input').fill(frankToken);
    await frank.getByTestId('connect-button').click();
    for (const [page, user] of [[erin, 'erin'], [frank, 'frank']]) {
      await waitOnline(page, WAIT_MS);
      await roomJoined(page, 'lobby');
      const me = await page.getByTestId('me').textContent();
      assert(me.includes(user), `the user comes from the token (${me})`);
    }
    const hi = `signed hello ${tag}`;
    await sendText(erin, hi);
    await seesMessage(frank, hi);
    const sender = await frank.getByTestId('message-list').locator('[data-testid=message][data-kind=chat]').last().getAttribute('data-sender');
    assert(sender === 'erin', `sender is the token's user (got ${sender})`);
  });

  // With WSLOOP_COMPRESSION_ENABLED=true in the environment (scripts/test runs this file a
  // second time so) the server accepts Chromium's permessage-deflate offer: every check above
  // then ran over compressed messages (RFC 7692).
  if (/^(1|true|on|yes)$/i.test(process.env.WSLOOP_COMPRESSION_ENABLED || '')) {
    await check('every page agreed on permessage-deflate with the server', async () => {
      const metrics = await (await fetch(`${base}/metrics`)).text();
      const value = (name) => Number((metrics.match(new RegExp(`^${name} (\\d+)`, 'm')) || [])[1]);
      const upgrades = value('wsloop_upgrades_total');
      const deflate = value('wsloop_deflate_upgrades_total');
      assert(upgrades > 0 && deflate === upgrades, `${deflate} of ${upgrades} upgrades compressed`);
    });
  }
}

const watchdog = setTimeout(() => {
  console.log(`not ok - the whole test took longer than ${TOTAL_MS / 1000} s`);
  killAllNow();
  process.exit(1);
}, TOTAL_MS);

let code = 0;
try {
  await main();
} catch (err) {
  code = 1;
  if (!err.counted) {
    failed++;
    console.log(`not ok ${passed + failed} - setup or screenshot outside a check`);
  }
  console.log(`# ${err.stack || err}`);
  if (serverLog.length) console.log('# server log (last lines):\n' + serverLog.slice(-40).map((l) => '#   ' + l).join('\n'));
  if (consoleErrors.length) console.log('# console errors:\n' + consoleErrors.map((l) => '#   ' + l).join('\n'));
  if (pageErrors.length) console.log('# page errors:\n' + pageErrors.map((l) => '#   ' + l).join('\n'));
} finally {
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
  await Promise.all([...servers].map((p) => stopServer(p)));
  killAllNow();
  clearTimeout(watchdog);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(code || (failed ? 1 : 0));
