// typescript-eslint's strictest type-aware rules over everything TypeScript compiles.
// Floating and misused promises are what break a proxy quietly: an unawaited write, an
// async handler whose rejection nobody sees (src/recording/api.ts returned sendCast()
// un-awaited inside a try, so a read error escaped its catch: found by this lint).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results/', '.gatehouse/', 'test-output/', 'bin/', 'test/reporter.cjs', 'eslint.config.js'] },
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // Numbers in messages ("larger than 1024 bytes") are what people read; everything else must be a string.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // noUncheckedIndexedAccess is on: `rows[i]!` after a bounds check is the idiom (and the redactor's
      // hot loops read bytes that way), and this rule cannot see the check. What must not come back, a
      // stage reading `trace.x!` off a shared mutable bag, is gone by construction (src/admission/admit.ts).
      '@typescript-eslint/no-non-null-assertion': 'off',
      // An async function with a synchronous body still turns a throw into a rejection, which callers
      // of an async interface rely on (the SQLite store answers the same interface as PostgreSQL's).
      '@typescript-eslint/require-await': 'off',
      // `return send(res, …)` is how a handler ends early; a stylistic rule, not a safety one.
      '@typescript-eslint/no-confusing-void-expression': 'off',
    },
  },
  {
    // Tests read the JSON kubectl, the API server and the gateway print, and assert on its shape:
    // there the assertion is the type check. Everything else stays as strict as src/.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      // Teardown (`after(() => demo?.stop())`) guards what a failed before() never made, though the
      // declared type says it is there. Checks that cannot fail are reviewed by hand instead.
      '@typescript-eslint/no-unnecessary-condition': 'off',
    },
  },
);
