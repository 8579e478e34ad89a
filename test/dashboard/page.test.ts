/**
 * The page as text: its script is valid JavaScript that never writes HTML, nothing in it can end
 * its <script> element early, and the page itself carries no data (the script fills it in as text).
 */
import { Script } from 'node:vm';
import { describe, expect, test } from 'vitest';
import { CLIENT_SCRIPT } from '../../src/dashboard/client.js';
import { PAGE_CSP, escapeHtml, renderPage } from '../../src/dashboard/page.js';

describe('the page script', () => {
  test('parses as a classic script', () => {
    expect(() => new Script(CLIENT_SCRIPT, { filename: 'dashboard-client.js' })).not.toThrow();
  });

  test('never turns data into markup: no innerHTML, outerHTML, insertAdjacentHTML, document.write, eval or Function', () => {
    for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'Function(', 'setAttribute(\'style\'', 'srcdoc']) {
      expect(CLIENT_SCRIPT, sink).not.toContain(sink);
    }
  });

  test('cannot close its own <script> element or open a comment that would swallow it', () => {
    expect(CLIENT_SCRIPT.toLowerCase()).not.toContain('</script');
    expect(CLIENT_SCRIPT).not.toContain('<!--');
  });
});

describe('the page', () => {
  test('its inline script and style are the ones the CSP hashes, and it loads nothing else', async () => {
    const page = renderPage('wsmount');
    const { createHash } = await import('node:crypto');
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    const script = /<script>([\s\S]*?)<\/script>/.exec(page)?.[1] ?? '';
    const style = /<style>([\s\S]*?)<\/style>/.exec(page)?.[1] ?? '';
    expect(script).toBe(CLIENT_SCRIPT);
    expect(PAGE_CSP).toContain(`script-src ${hash(script)};`);
    expect(PAGE_CSP).toContain(`style-src ${hash(style)};`);
    expect(page).not.toMatch(/\sstyle=|\son[a-z]+=/i);
  });

  test('escapeHtml escapes what could open markup or end an attribute', () => {
    expect(escapeHtml(`<a href="x" title='y'>&amp;</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;');
    expect(escapeHtml('plain · text')).toBe('plain · text');
  });
});
