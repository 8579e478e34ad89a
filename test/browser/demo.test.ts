/**
 * The demo pages in headless Chromium: each page is served by `startDemo({ port: 0 })`, typed into
 * like a person would, and judged by what it shows. Screenshots go to demo/screenshots/ with SCREENSHOTS=1.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HandlerStats, WebSocketHandler } from '../../src/index.js';
import { WAIT, chatOf, waitForChat } from './chat-page.js';
import { MISSING_CHROMIUM, hasChromium, launchChromium, screenshotDir } from './chromium.js';

/** demo/app.js's public shape (it is plain JavaScript, so TypeScript does not read it). */
interface Demo {
  port: number;
  url: string;
  close(): Promise<void>;
  handler: WebSocketHandler;
}
interface DemoModule {
  startDemo(options?: { port?: number; host?: string; log?: (line: string) => void }): Promise<Demo>;
}
const appUrl: string = new URL('../../demo/app.js', import.meta.url).href;
const { startDemo } = (await import(appUrl)) as DemoModule;

/** The browser's getComputedStyle, for callbacks that run in the page (the tests compile without the DOM's types). */
declare const getComputedStyle: (element: unknown) => { color: string; textAlign: string };

/**
 * Run in the page (as strings: the tests compile without the DOM's types): the document's full
 * width and the window's, equal when nothing sticks out sideways.
 */
const PAGE_WIDTHS = '[document.documentElement.scrollWidth, document.documentElement.clientWidth]';

const screenshots = pathToFileURL(`${screenshotDir}/`);

/** The page's log, one line per entry. */
function logOf(page: Page): Promise<string[]> {
  return page.locator('#log > div').allTextContents();
}
/** Who the chat page lists as here: its count, then one name per person (without the avatar's letter). */
function peopleOf(page: Page): Promise<string[]> {
  return page.locator('#people li').evaluateAll((items) =>
    items.map((li) => (li.querySelector('.name') ?? li).textContent ?? ''),
  );
}
function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
/** How many of the chat's lines are exactly `line`. */
async function countInChat(page: Page, line: string): Promise<number> {
  return (await chatOf(page)).filter((l) => l === line).length;
}
function stateOf(page: Page): Promise<string | null> {
  return page.locator('#state').textContent();
}
/** Types `text` into the page's input and presses Enter, as a person would. */
async function type(page: Page, text: string): Promise<void> {
  const input = page.locator('input[name=text]');
  await input.click();
  await input.fill(text);
  await input.press('Enter');
}
async function waitForLine(page: Page, line: string): Promise<void> {
  await expect.poll(() => logOf(page), WAIT).toContain(line);
}
async function snap(page: Page, name: string, { fullPage = false } = {}): Promise<void> {
  await page.screenshot({ path: fileURLToPath(new URL(`${name}.png`, screenshots)), fullPage });
}

it('has Chromium where the browser tests must run', () => {
  if (hasChromium) return;
  if (process.env.CI) expect.fail(MISSING_CHROMIUM);
  console.log(MISSING_CHROMIUM);
});

describe.runIf(hasChromium)('demo pages in Chromium', () => {
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;
  let demo: Demo;
  const serverLog: string[] = [];
  const pages: Page[] = [];
  /** Script errors and failed or foreign requests of every page: each test ends with none. */
  const problems: string[] = [];

  async function open(path: string, { width = 800, height = 640 } = {}): Promise<Page> {
    // A fixed locale, so numbers are formatted the same wherever the tests run.
    const page = await browser.newPage({ viewport: { width, height }, locale: 'en-US' });
    page.setDefaultTimeout(10_000);
    pages.push(page);
    page.on('pageerror', (e) => problems.push(`${path}: ${e.message}`));
    page.on('request', (req) => {
      // The pages are self-contained: everything they load comes from the demo server.
      const url = new URL(req.url());
      if (url.protocol !== 'data:' && url.host !== new URL(demo.url).host) problems.push(`${path} loaded ${req.url()}`);
    });
    page.on('response', (res) => {
      if (res.status() >= 400) problems.push(`${path}: ${res.status()} for ${res.url()}`);
    });
    await page.goto(new URL(path, demo.url).href);
    return page;
  }
  async function openConnected(path: string): Promise<Page> {
    const page = await open(path);
    await expect.poll(() => stateOf(page), WAIT).toBe('open');
    return page;
  }

  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true });
    chromium = await launchChromium();
    browser = chromium.browser;
    demo = await startDemo({ port: 0, log: (line) => serverLog.push(line) });
  });
  afterEach(async () => {
    await Promise.all(pages.splice(0).map((p) => p.close()));
    expect(problems.splice(0)).toEqual([]);
  });
  afterAll(async () => {
    await demo?.close();
    await chromium?.close();
  });

  it('index links every demo page', async () => {
    const page = await open('/');
    const links = await Promise.all((await page.locator('.demos a').all()).map((a) => a.getAttribute('href')));
    expect(links).toEqual(['chat.html', 'headers.html', 'reverse.html', 'notify.html', 'listen.html', 'stats.html', 'dashboard/']);
    await snap(page, 'index');
    await page.locator('.demos a', { hasText: 'Reverse' }).click();
    await expect.poll(() => stateOf(page), WAIT).toBe('open');
    expect(new URL(page.url()).pathname).toBe('/reverse.html');
  });

  it('every page has the same bar of links to the others, marks its own, and uses the one shared stylesheet', async () => {
    const nav = ['./', 'chat.html', 'headers.html', 'reverse.html', 'notify.html', 'listen.html', 'stats.html'];
    for (const file of ['index.html', 'chat.html', 'headers.html', 'reverse.html', 'notify.html', 'listen.html', 'stats.html']) {
      const page = await open(`/${file}`);
      const hrefs = await page.locator('.topbar a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      expect(hrefs, file).toEqual(nav);
      const current = await page.locator('.topbar a[aria-current="page"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      expect(current, file).toEqual(file === 'index.html' ? [] : [file]);
      const sheets = await page.locator('link[rel=stylesheet]').evaluateAll((ls) => ls.map((l) => l.getAttribute('href')));
      expect(sheets, file).toEqual(['style.css']);
      // The stylesheet is applied: the shared font stack and background, not the browser's defaults.
      const body = await page.evaluate<[string, string]>('[getComputedStyle(document.body).fontFamily, getComputedStyle(document.body).backgroundColor]');
      expect(body[0], file).toMatch(/^system-ui/);
      expect(body[1], file).toBe('rgb(244, 245, 247)');
    }
  });

  it('every page fits a 360-pixel-wide phone screen: nothing sticks out sideways', async () => {
    for (const path of ['/', '/chat?name=a-rather-long-name-here', '/headers', '/reverse', '/notify', '/listen', '/stats.html', '/dashboard/']) {
      const page = await open(path, { width: 360, height: 640 });
      await page.waitForLoadState('load');
      if (path !== '/') await expect.poll(() => stateOf(page), WAIT).toMatch(/^(open|live)$/);
      const [scrollWidth, clientWidth] = await page.evaluate<[number, number]>(PAGE_WIDTHS);
      expect(scrollWidth, path).toBeLessThanOrEqual(clientWidth);
    }
  });

  /** Opens the chat as `name` and waits until the server has welcomed it. */
  async function joinChat(name: string, path = '/chat'): Promise<Page> {
    const page = await openConnected(`${path}?name=${encodeURIComponent(name)}`);
    await waitForChat(page, new RegExp(`^You joined as ${escapeRegExp(name)}\\.`));
    return page;
  }
  /** The id the server gave the chat client called `name`, from the server's log. */
  function chatIdOf(name: string): string {
    const joined = serverLog.filter((l) => l.startsWith(`chat: ${JSON.stringify(name)} (client `) && l.includes(') joined from '));
    const id = /\(client (\d+)\)/.exec(joined.at(-1) ?? '')?.[1];
    expect(id, `no join of ${name} in the server log`).toBeDefined();
    return id ?? '';
  }

  it('chat: two people see each other’s messages under their names, each join and leave names who; the server logs it all', async () => {
    const alice = await joinChat('alice');
    const bob = await joinChat('bob', '/chat.html');
    await waitForChat(bob, /^You joined as bob\. Also here: (.*, )?alice\.$/);
    await waitForChat(alice, 'bob joined');
    await expect.poll(() => peopleOf(alice), WAIT).toEqual(['2 here:', 'alice (you)', 'bob']);

    await type(alice, 'hello from alice');
    await waitForChat(bob, 'alice: hello from alice');
    await waitForChat(alice, 'alice: hello from alice');
    await type(bob, 'ça va, alice? 😀');
    await waitForChat(alice, 'bob: ça va, alice? 😀');
    await waitForChat(bob, 'bob: ça va, alice? 😀');
    // Her own message is marked as hers on her page only.
    expect(await alice.locator('#chat-log .msg.mine .text').allTextContents()).toEqual(['hello from alice']);
    expect(await bob.locator('#chat-log .msg.mine .text').allTextContents()).toEqual(['ça va, alice? 😀']);
    expect(await alice.locator('#chat-log .msg.mine .you').textContent()).toBe('(you)');

    // A name has one colour, the same on every page, and two names differ.
    const colourOf = (page: Page, name: string) =>
      page.locator('#chat-log .msg .who', { hasText: name }).first().evaluate((el) => getComputedStyle(el).color);
    const aliceColour = await colourOf(alice, 'alice');
    expect(await colourOf(bob, 'alice')).toBe(aliceColour);
    expect(await colourOf(alice, 'bob')).not.toBe(aliceColour);
    await snap(alice, 'chat');

    const aliceId = chatIdOf('alice');
    const bobId = chatIdOf('bob');
    await bob.close();
    await waitForChat(alice, 'bob left');
    await expect.poll(() => peopleOf(alice), WAIT).toEqual(['Only you here']);
    await expect.poll(() => serverLog, WAIT).toContain(`chat: "bob" (client ${bobId}) left (1001)`);
    expect(serverLog).toContain(`chat: "alice" (client ${aliceId}) said: "hello from alice"`);
  });

  it('chat: the sender sees its own message exactly once, when the server sends it back', async () => {
    const page = await joinChat('solo');
    const before = await chatOf(page);
    await type(page, 'only once');
    await waitForChat(page, 'solo: only once');
    // A second message, answered after the first: had the page also shown the first one itself,
    // the copy would be there by now.
    await type(page, 'and then this');
    await waitForChat(page, 'solo: and then this');
    expect(await countInChat(page, 'solo: only once')).toBe(1);
    expect((await chatOf(page)).slice(before.length)).toEqual(['solo: only once', 'solo: and then this']);
    expect((await chatOf(page)).join('\n')).not.toContain('→');
  });

  it('chat: a name or message with HTML in it is shown as text, never as markup', async () => {
    const watcher = await joinChat('watcher');
    const name = '<b>eve</b><img src=x>';
    const eve = await joinChat(name);
    await waitForChat(watcher, `${name} joined`);
    await type(eve, '<i>hi</i><script>document.title="pwned"</script>');
    for (const page of [watcher, eve]) {
      await waitForChat(page, `${name}: <i>hi</i><script>document.title="pwned"</script>`);
      expect(await page.locator('#chat-log b, #chat-log i, #chat-log img, #chat-log script, #people b, #people img').count()).toBe(0);
      expect(await page.locator('#people').textContent()).toContain(name);
      expect(await page.title()).toBe('Chat · wsmount demo');
    }
    expect(await eve.locator('#name').inputValue()).toBe(name);
  });

  it('chat: a guest name by default, at most 24 characters, and a new name that everyone sees and the page remembers', async () => {
    const watcher = await joinChat('watcher');
    const guest = await openConnected('/chat');
    const guestName = await guest.locator('#name').inputValue();
    expect(guestName).toMatch(/^guest-[0-9a-f]{4}$/);
    await waitForChat(guest, new RegExp(`^You joined as ${guestName}\\.`));
    await waitForChat(watcher, `${guestName} joined`);

    // A name longer than 24 characters is cut by the server (the page's field stops at 24 too).
    await guest.locator('#name').evaluate((el) => el.removeAttribute('maxlength'));
    await guest.locator('#name').fill(`  Zoë   ${'z'.repeat(40)}`);
    await guest.locator('#name').press('Enter');
    const cut = `Zoë ${'z'.repeat(20)}`;
    await waitForChat(guest, `You are now ${cut}`);
    await waitForChat(watcher, `${guestName} is now ${cut}`);
    await expect.poll(() => guest.locator('#name').inputValue(), WAIT).toBe(cut);
    await type(guest, 'renamed');
    await waitForChat(watcher, `${cut}: renamed`);

    // The page remembers the name: a reload joins with it.
    await guest.reload();
    await waitForChat(guest, new RegExp(`^You joined as ${cut}\\.`));
    await waitForChat(watcher, `${cut} joined`);
  });

  it('headers: the User-Agent of the upgrade request, and "no such header" for a made-up one', async () => {
    const page = await openConnected('/headers');
    const userAgent = await page.evaluate<string>('navigator.userAgent');
    await type(page, 'User-Agent');
    await waitForLine(page, `User-Agent: ${userAgent}`);
    await type(page, 'X-Made-Up-Header');
    await waitForLine(page, 'no such header: X-Made-Up-Header');
    await type(page, 'constructor'); // not a header, though every object has one
    await waitForLine(page, 'no such header: constructor');
    await type(page, 'sec-websocket-version');
    await waitForLine(page, 'sec-websocket-version: 13');
    await snap(page, 'headers');
  });

  it('reverse: reverses by code point, so accents and emoji stay whole', async () => {
    const page = await openConnected('/reverse');
    await type(page, 'abc');
    await waitForLine(page, 'c.b.a');
    await type(page, 'héllo 😀');
    await waitForLine(page, '😀. .o.l.l.é.h');
    await snap(page, 'reverse'); // before the CJK line: this machine has no CJK font to draw it
    await type(page, '漢字かな');
    await waitForLine(page, 'な.か.字.漢');
  });

  it('notify → listen: only the highest-priority listener gets an event; when it leaves, the next one does', async () => {
    const notify = await openConnected('/notify.html');
    await expect.poll(() => notify.locator('#source').textContent(), WAIT).toMatch(/^\d+$/);
    const source = (await notify.locator('#source').textContent()) ?? '';
    expect(await logOf(notify)).toEqual([`your source id is ${source}`]);

    const low = await openConnected('/listen.html');
    const high = await openConnected('/listen.html');

    // Bad input is answered in words.
    await type(low, 'abc');
    await expect.poll(async () => (await logOf(low)).join('\n'), WAIT).toContain('error: bad input in "abc"');
    await type(low, source);
    await expect.poll(async () => (await logOf(low)).join('\n'), WAIT).toContain('error: missing priority');
    await type(low, '999999 1');
    await waitForLine(low, 'error: unknown source 999999');

    await type(low, `${source} 1`);
    await waitForLine(low, `subscribed to source ${source} with priority 1`);
    await type(high, `${source} 5`);
    await waitForLine(high, `subscribed to source ${source} with priority 5`);

    await type(notify, 'first event');
    await waitForLine(high, `event from source ${source}: first event`);
    await expect.poll(async () => (await logOf(notify)).some((l) => l.endsWith('(priority 5)')), WAIT).toBe(true);
    expect((await logOf(low)).some((l) => l.includes('first event'))).toBe(false);

    // The priority-5 page leaves; once the server has seen it go, the priority-1 page is next.
    const left = (): number => serverLog.filter((l) => /^listen: listener \d+ left$/.test(l)).length;
    const leftBefore = left();
    await high.close();
    await expect.poll(left, WAIT).toBe(leftBefore + 1);
    await type(notify, 'second event');
    await waitForLine(low, `event from source ${source}: second event`);
    await expect.poll(async () => (await logOf(notify)).some((l) => l.endsWith('(priority 1)')), WAIT).toBe(true);
    await snap(notify, 'notify');

    // A source that leaves takes its subscriptions with it, and its listeners are told.
    await notify.close();
    await waitForLine(low, `source ${source} has gone: subscription dropped`);
    await type(low, `${source} 1`);
    await waitForLine(low, `error: unknown source ${source}`);
    await snap(low, 'listen');
  });

  it("stats: the page shows the handler's live counters under readable labels, grouped, with thousands separators", async () => {
    const stats = await open('/stats.html');
    // A number's cell: the number (.n), then for bytes a hint like "1.5 KiB".
    const cell = async (name: string) => (await stats.locator(`td[data-name="${name}"] .n`).textContent()) ?? '';
    const count = async (name: string) => Number((await cell(name)).replace(/,/g, ''));
    await expect.poll(() => stateOf(stats), WAIT).toBe('live');
    const before = await count('handshakesAccepted');
    expect(Number.isInteger(before)).toBe(true);
    const chat = await joinChat('counter');
    await expect.poll(() => count('handshakesAccepted'), WAIT).toBe(before + 1);
    await expect.poll(() => cell('connectionsByRoute./chat'), WAIT).toBe('1');
    await type(chat, 'counted');
    await expect.poll(() => count('messagesIn'), WAIT).toBeGreaterThanOrEqual(1);

    // The labels are words, left-aligned, in groups; no field name shows.
    expect(await stats.locator('.stats h2').allTextContents()).toEqual(
      expect.arrayContaining(['Connections', 'Handshakes', 'Traffic', 'Closes', 'Heartbeat']),
    );
    const labels = await stats.locator('.stats th').allTextContents();
    expect(labels).toEqual(expect.arrayContaining(['Open connections', 'Open on each route', '/chat', 'Messages received', 'Bytes sent']));
    const fields = Object.keys(demo.handler.stats());
    expect(labels.filter((l) => fields.includes(l))).toEqual([]);
    // Polled: the page rebuilds its table every second, and a row replaced between Playwright's
    // query and its evaluation is detached (no computed style: '').
    await expect
      .poll(() => stats.locator('.stats th').evaluateAll((ths) => [...new Set(ths.filter((th) => th.isConnected).map((th) => getComputedStyle(th).textAlign))]), WAIT)
      .toEqual(['left']);
    expect(await stats.locator('th', { hasText: 'Open connections' }).locator('xpath=ancestor::section/h2').textContent()).toBe('Connections');

    // Numbers of four digits and more are grouped by thousands: 2,400 characters in, 4,799 back out.
    const reverse = await openConnected('/reverse');
    await type(reverse, 'ab'.repeat(1200));
    await expect.poll(async () => (await logOf(reverse)).length, WAIT).toBe(2);
    await expect.poll(() => count('bytesOut'), WAIT).toBeGreaterThan(4000);
    expect(await stats.locator('td[data-name="bytesOut"] .n').textContent()).toMatch(/^\d{1,3}(,\d{3})+$/);
    expect(await stats.locator('td[data-name="bytesOut"] .hint').textContent()).toMatch(/^\d+(\.\d)? KiB$/);
    await snap(stats, 'stats', { fullPage: true });
  });

  it("dashboard: the demo mounts wsmount/dashboard at /dashboard/, linked from the index; it charts the demo's own sockets live", async () => {
    const index = await open('/');
    await index.locator('.demos a', { hasText: 'Dashboard' }).click();
    await expect.poll(() => stateOf(index), WAIT).toBe('live');
    expect(new URL(index.url()).pathname).toBe('/dashboard/');
    expect(await index.title()).toBe('wsmount demo · WebSocket dashboard');
    const routes = await index.locator('#routes tbody tr td:first-child').allTextContents();
    expect([...routes].sort()).toEqual(['/chat', '/headers', '/listen', '/notify', '/reverse']);
    const open0 = Number(await index.locator('#card-connections').textContent());
    await joinChat('watched');
    await expect.poll(async () => Number(await index.locator('#card-connections').textContent()), WAIT).toBe(open0 + 1);
    await expect
      .poll(() => index.locator('#routes tbody tr', { hasText: '/chat' }).locator('td').nth(1).textContent(), WAIT)
      .toBe(String(demo.handler.clientsOf('/chat').size));
    // A line (or more: it breaks where nobody watched and no sample was taken).
    await expect.poll(() => index.locator('#chart-connections path.line').count(), WAIT).toBeGreaterThanOrEqual(1);
    // The stats page links to it too.
    const stats = await open('/stats.html');
    expect(await stats.locator('main a[href="dashboard/"]').count()).toBe(1);
  });

  it('every page reconnects after the server restarts on the same port, and works again', async () => {
    const all = await Promise.all(['/chat?name=phoenix', '/headers', '/reverse', '/notify', '/listen'].map(openConnected));
    const [chat, , reverse, notify, listen] = all as [Page, Page, Page, Page, Page];
    await waitForChat(chat, /^You joined as phoenix\./);
    const { port } = demo;
    await demo.close();
    for (const page of all) await expect.poll(() => stateOf(page), WAIT).toMatch(/^reconnecting/);
    await type(reverse, 'lost'); // the page says it could not send, rather than dropping it silently
    await waitForLine(reverse, 'not connected: "lost" was not sent');
    await type(chat, 'typed while away'); // the chat keeps the text in the box, to send once back
    await waitForChat(chat, 'Not connected: your message was not sent (it is still in the box).');
    expect(await chat.locator('input[name=text]').inputValue()).toBe('typed while away');

    demo = await startDemo({ port, log: (line) => serverLog.push(line) });
    expect(demo.port).toBe(port);
    for (const page of all) await expect.poll(() => stateOf(page), WAIT).toBe('open');
    await type(reverse, 'back');
    await waitForLine(reverse, 'k.c.a.b');
    // The notify page is a new source now, and the listen page can subscribe to it.
    await expect.poll(async () => (await logOf(notify)).filter((l) => l.startsWith('your source id is')).length, WAIT).toBe(2);
    const source = (await notify.locator('#source').textContent()) ?? '';
    await waitForLine(listen, 'reconnected: subscriptions do not survive a reconnect, subscribe again');
    await type(listen, `${source} 3`);
    await waitForLine(listen, `subscribed to source ${source} with priority 3`);
    // The chat joins again under the same name, and the kept text goes out with one press.
    await expect.poll(async () => (await chatOf(chat)).filter((l) => l.startsWith('You joined as phoenix.')).length, WAIT).toBe(2);
    await chat.locator('input[name=text]').press('Enter');
    await waitForChat(chat, 'phoenix: typed while away');
  });
});

describe('the chat protocol (no browser)', () => {
  /** A /chat client with Node's WebSocket that keeps every JSON event it receives. */
  async function chatClient(port: number, query: string) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/chat${query}`);
    const events: Array<Record<string, unknown>> = [];
    ws.addEventListener('message', (e) => events.push(JSON.parse(String(e.data)) as Record<string, unknown>));
    await new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve);
      ws.addEventListener('error', reject);
    });
    const next = async (type: string, from = 0) => {
      await expect.poll(() => events.slice(from).some((e) => e['type'] === type), WAIT).toBe(true);
      return events.slice(from).find((e) => e['type'] === type) ?? {};
    };
    return { ws, events, next };
  }

  it('names are cleaned and cut by the server; bad commands are answered with an error, and the connection stays', async () => {
    const demo = await startDemo({ port: 0, log: () => {} });
    try {
      // Control characters (an ANSI escape) and a right-to-left override become spaces; runs of space one.
      const odd = await chatClient(demo.port, `?name=${encodeURIComponent('\u001b[31mred\u202e  x\n')}`);
      expect(await odd.next('welcome')).toMatchObject({ you: { name: '[31mred x' } });
      // No name, or nothing visible: a guest name.
      const guest = await chatClient(demo.port, `?name=${encodeURIComponent(' \u200f ')}`);
      const welcome = await guest.next('welcome');
      expect(welcome['you']).toMatchObject({ name: expect.stringMatching(/^guest-[0-9a-f]{4}$/) });
      expect((welcome['people'] as Array<{ name: string }>).map((p) => p.name)).toEqual(['[31mred x', (welcome['you'] as { name: string }).name]);
      expect(await odd.next('joined')).toMatchObject({ name: (welcome['you'] as { name: string }).name });

      const errorFor = async (data: string) => {
        const from = guest.events.length;
        guest.ws.send(data);
        return (await guest.next('error', from))['message'];
      };
      expect(await errorFor('hello')).toMatch(/^not JSON/);
      expect(await errorFor('{"type":"shout","text":"x"}')).toMatch(/^unknown command/);
      expect(await errorFor('{"type":"say","text":"   "}')).toBe('nothing to send');
      expect(await errorFor(JSON.stringify({ type: 'say', text: '😀'.repeat(1001) }))).toBe('too long: at most 1000 characters');
      expect(await errorFor('{"type":"rename","name":"\\u0007"}')).toBe('a name needs at least one visible character');
      // …and a good message after all that still reaches everyone, the sender included, once.
      const from = odd.events.length;
      guest.ws.send(JSON.stringify({ type: 'say', text: '😀'.repeat(1000) }));
      expect(await odd.next('message', from)).toMatchObject({ text: '😀'.repeat(1000) });
      await expect.poll(() => guest.events.filter((e) => e['type'] === 'message').length, WAIT).toBe(1);
      expect(guest.ws.readyState).toBe(WebSocket.OPEN);
      odd.ws.close();
      guest.ws.close();
    } finally {
      await demo.close();
    }
  });
});

describe('demo server limits (no browser)', () => {
  it('/stats.json is handler.stats(); a script flooding /chat is closed with 1008 by the route rate limit', async () => {
    const demo = await startDemo({ port: 0, log: () => {} });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${demo.port}/chat`);
      const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
      await new Promise((resolve, reject) => {
        ws.addEventListener('open', resolve);
        ws.addEventListener('error', reject);
      });
      for (let i = 0; i < 40; i++) ws.send(`flood ${i}`); // the route allows bursts of 20
      expect(await closed).toBe(1008);
      const stats = (await (await fetch(`http://127.0.0.1:${demo.port}/stats.json`)).json()) as HandlerStats;
      expect(stats.rateLimitCloses).toBe(1);
      expect(stats.closesByCode['1008']).toBe(1);
      expect(stats.handshakesAccepted).toBe(1);
      expect(stats).toEqual(JSON.parse(JSON.stringify(demo.handler.stats())));
      // The same counters at /metrics, in Prometheus' text format.
      const metrics = await fetch(`http://127.0.0.1:${demo.port}/metrics`);
      expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const text = await metrics.text();
      expect(text).toContain('wsmount_rate_limit_closes_total{route="/chat"} 1\n');
      expect(text).toContain('wsmount_closes_total{route="/chat",code="1008"} 1\n');
    } finally {
      await demo.close();
    }
  });
});
