Dva mladí muži venku poblíž keřů.
Několik mužů v helmách obsluhuje obří kladkový systém.
Malá holčička leze do dřevěného domku.
