// kiln: the image builder's command line. Thin on purpose: it parses arguments,
// calls the core library and prints; all logic lives in kiln_core / kiln_image.
#include "kiln/commands.hpp"

int
main(int argc, char** argv)
{
  return kiln::cmd::kiln_main(argc, argv);
}
