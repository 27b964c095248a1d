/**
 * The text of a file that dist/ holds beside the CLI bundle (a worker bundle, a library
 * bundled apart: scripts/lib/bundle.ts), when the program carries it inside itself: a
 * single executable has no files beside it, and its build (scripts/sea/main-script.ts) puts
 * another module in this one's place, which has them. Everywhere else they are files.
 */
export function embeddedFile(_name: string): string | undefined {
  return undefined;
}
