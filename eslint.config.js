import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
      // procps-ng 4.0.2's kill(1) reads `kill -KILL -18123` as `kill -KILL -1`: every process dies.
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[arguments.0.value='kill']",
          message: 'Signal processes with process.kill or child.kill, never the kill program.',
        },
      ],
    },
  },
  { files: ['bin/**', 'scripts/**', 'bench/**', 'test/**'], rules: { 'no-console': 'off' } },
  // The launcher is plain JavaScript run by Node.
  { files: ['bin/**'], languageOptions: { globals: { process: 'readonly', URL: 'readonly' } } },
  {
    // The dashboard's front end runs in the browser.
    files: ['src/dashboard/public/**'],
    languageOptions: { globals: { document: 'readonly', Node: 'readonly', EventSource: 'readonly' } },
  },
);
