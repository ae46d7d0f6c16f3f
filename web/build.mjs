// Build the web app into collab/static (or the directory given as the first argument).
//
//   cd web && npm ci && node build.mjs            # writes ../collab/static
//   node web/build.mjs /tmp/out                   # anywhere else (tests compare the two)
//
// The output is deterministic: the same sources and node_modules give the same
// bytes, whatever the working directory (no source maps, no absolute paths).
import { build, transform } from 'esbuild'
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const outdir = resolve(process.argv[2] || join(here, '..', 'collab', 'static'))
const staticSrc = join(here, 'src', 'static')

mkdirSync(outdir, { recursive: true })

const result = await build({
  absWorkingDir: here,
  entryPoints: ['src/main.js'],
  outfile: join(outdir, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  charset: 'utf8',
  metafile: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' }
})

// The static files are copied as they are; stylesheets are minified.
for (const name of readdirSync(staticSrc).sort()) {
  if (name.endsWith('.css')) {
    const css = await transform(readFileSync(join(staticSrc, name), 'utf8'), { loader: 'css', minify: true, legalComments: 'none' })
    writeFileSync(join(outdir, name), css.code)
  } else {
    copyFileSync(join(staticSrc, name), join(outdir, name))
  }
}

// The two pages differ only in their title and which part of the app they start.
const template = readFileSync(join(here, 'src', 'page.html'), 'utf8')
const pages = { 'index.html': ['collab', 'lobby'], 'session.html': ['collab session', 'session'] }
for (const [name, [title, page]] of Object.entries(pages)) {
  writeFileSync(join(outdir, name), template.replace('{{title}}', title).replace('{{page}}', page))
}

// Licences of every package in the bundle, next to it.
const packages = new Map()
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/^node_modules\/((?:@[^/]+\/)?[^/]+)\//)
  if (!match || packages.has(match[1])) continue
  const dir = join(here, 'node_modules', match[1])
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  const licenceFile = readdirSync(dir).sort().find((f) => /^(licen[sc]e|copying)(\.|$)/i.test(f))
  const text = licenceFile ? readFileSync(join(dir, licenceFile), 'utf8').trim() : '(no licence file; package.json says ' + meta.license + ')'
  packages.set(match[1], { version: meta.version, license: meta.license, text })
}
const notices = ['Third-party software bundled in app.js', '']
for (const name of [...packages.keys()].sort()) {
  const p = packages.get(name)
  notices.push('='.repeat(72), `${name} ${p.version} (${p.license})`, '='.repeat(72), p.text.replace(/\r\n/g, '\n'), '')
}
writeFileSync(join(outdir, 'THIRD_PARTY_LICENSES.txt'), notices.join('\n'))

if (!existsSync(join(outdir, 'app.js'))) throw new Error('app.js was not written')
const size = readFileSync(join(outdir, 'app.js')).length
console.log(`built ${join(outdir, 'app.js')} (${(size / 1024).toFixed(1)} KiB) and ${readdirSync(staticSrc).length + Object.keys(pages).length + 1} other files`)
