// The form fields of an HTML page as a browser would submit them (hidden
// inputs and checked boxes), for the interop scripts that play the person
// at the sign-in and consent pages.

export function formFields(html) {
  const fields = [];
  for (const tag of html.match(/<input[^>]*>/g) || []) {
    const type = /type="([^"]*)"/.exec(tag)?.[1];
    const name = /name="([^"]*)"/.exec(tag)?.[1];
    const value = /value="([^"]*)"/.exec(tag)?.[1] ?? '';
    if (name && (type === 'hidden' || type === 'checkbox')) {
      fields.push([unescape(name), unescape(value)]);
    }
  }
  return fields;
}

// Character references as a browser decodes them: named and numeric.
export function unescape(text) {
  const named = { quot: '"', apos: "'", lt: '<', gt: '>', amp: '&' };
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|quot|apos|lt|gt|amp);/gi, (_, ref) => {
    const lower = ref.toLowerCase();
    if (named[lower]) return named[lower];
    const code = lower.startsWith('#x') ? parseInt(lower.slice(2), 16) : parseInt(lower.slice(1), 10);
    return String.fromCodePoint(code);
  });
}
